"""Issue 12, item 8: the admin API under abuse, on real PostgreSQL and Temporal.

A flood of unauthenticated status reads against a locked table cannot take the pool from a PATCH
or /readyz; a foreign Host gets 421 (DNS rebinding); probes and 503s carry fixed words, not
exception text; a provider URL on a link-local or metadata address is refused unless allowed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from temporalio.client import Client

from indexer.embedded import free_port
from indexer.store.chains import set_head
from indexer.store.db import create_pool
from tests.support.api import ApiClient, api_process, serving_api
from tests.support.harness import Harness
from tests.support.waiting import wait_until

FLOOD = 40
# Deadlock detector only: on a free pool these answer in milliseconds; queued behind the flood
# they would wait for the lock, which this test releases only after they answered.
UNBLOCKED_SECONDS = 10.0
LOCK_WAITERS = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


async def test_a_read_flood_on_a_locked_table_leaves_writes_and_probes_free(
    harness: Harness, api: ApiClient, database_url: str
) -> None:
    row = await harness.add_chain("http://127.0.0.1:9")
    name = row.config.name
    await set_head(harness.pool, row.id, 1_000)
    # The test's own connections, outside the pool the flood competes for.
    locker, observer = [await asyncpg.connect(database_url) for _ in range(2)]
    try:
        locked = locker.transaction()
        await locked.start()
        await locker.execute("LOCK TABLE indexed_ranges IN ACCESS EXCLUSIVE MODE")
        paths = ["/chains/status", f"/chains/{name}/status", f"/chains/{name}/gaps"]
        flood = [asyncio.create_task(api.get(paths[i % len(paths)])) for i in range(FLOOD)]
        waiting: list[int] = []

        async def reads_blocked() -> bool:
            waiting.append(await observer.fetchval(LOCK_WAITERS))
            return waiting[-1] >= 1

        await wait_until(reads_blocked, 30, "status reads waiting on the lock")
        patch = api.call("PATCH", f"/chains/{name}", {"max_replicas": 4})
        patched = await asyncio.wait_for(patch, UNBLOCKED_SECONDS)
        assert patched[0] == 200, patched
        ready = await asyncio.wait_for(api.get("/readyz"), UNBLOCKED_SECONDS)
        assert ready == (200, {"status": "ready", "postgres": "ok", "temporal": "ok"})
        await reads_blocked()
        answers = await asyncio.gather(*flood)  # statement timeouts end them under the lock
        await locked.rollback()
    finally:
        await asyncio.gather(locker.close(), observer.close())
    assert sorted({status for status, _ in answers}) == [503], answers
    assert {body["error"] for _, body in answers} == {"PostgreSQL is busy: retry shortly"}
    assert max(waiting) <= 4  # READ_CONNECTIONS: the rest of the flood never got a connection
    status, every = await api.get("/chains/status")  # the lock is gone: reads work again
    assert status == 200 and [s["chain"] for s in every["chains"]] == [name]


async def test_a_foreign_host_gets_421_but_probes_answer(harness: Harness, api: ApiClient) -> None:
    port = api.base.rsplit(":", 1)[1]
    before = await harness.pool.fetchval("SELECT count(*) FROM chains")
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        headers = {"Host": host}
        status, error = await api.call("GET", "/chains", headers=headers, token=None)
        assert status == 421 and error["field"] == "Host", (host, error)
        body = {"name": "rebound", "rpc_url": "http://127.0.0.1:9"}
        assert (await api.call("POST", "/chains", body, headers=headers))[0] == 421
        for probe in ("/healthz", "/readyz"):
            assert (await api.call("GET", probe, headers=headers, token=None))[0] == 200
    assert await harness.pool.fetchval("SELECT count(*) FROM chains") == before
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.", f"[::1]:{port}"):
        assert (await api.call("GET", "/chains", headers={"Host": host}))[0] == 200, host

    async with serving_api(harness, allowed_hosts=frozenset({"indexer.internal"})) as proxied:
        assert (await proxied.call("GET", "/chains", headers={"Host": "indexer.internal"}))[
            0
        ] == 200
        assert (await proxied.get("/chains"))[0] == 421  # 127.0.0.1 is not in the list
    async with serving_api(harness, allowed_hosts=frozenset({"*"})) as anything:
        assert (await anything.call("GET", "/chains", headers={"Host": "any.example"}))[0] == 200


async def test_tindexer_api_checks_the_host(
    database_url: str, temporal_address: str, tmp_path: Path
) -> None:
    with api_process(database_url, temporal_address, "unused", tmp_path) as base:
        async with aiohttp.ClientSession() as session:
            for host, expected in (("evil.example", 421), (base.removeprefix("http://"), 200)):
                async with session.get(f"{base}/chains", headers={"Host": host}) as response:
                    assert response.status == expected, host


async def test_probes_and_503s_say_what_is_down_not_why(
    harness: Harness, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="indexer.api")
    row = await harness.add_chain("http://127.0.0.1:9")
    await set_head(harness.pool, row.id, 100)
    dead_temporal = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    async with serving_api(harness, temporal=dead_temporal) as api:
        assert await api.get("/readyz") == (
            503,
            {"status": "not ready", "postgres": "ok", "temporal": "unreachable"},
        )
        backfill = {"from": 0, "to": 10}
        assert await api.call("POST", f"/chains/{row.config.name}/backfill", backfill) == (
            503,
            {"error": "Temporal is unavailable", "field": None},
        )
    dead_pool = await create_pool(database_url, max_size=1)
    await dead_pool.close()
    async with serving_api(harness, pool=dead_pool) as api:
        assert await api.get("/readyz") == (
            503,
            {"status": "not ready", "postgres": "unreachable", "temporal": "ok"},
        )
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Temporal unreachable: RuntimeError" in logged  # the detail is in the server log
    assert "PostgreSQL unreachable: InterfaceError" in logged


async def test_provider_urls_on_metadata_addresses_are_refused(harness: Harness) -> None:
    refused = [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]:8545",
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",  # 169.254.169.254 as one decimal number
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://127.0.0.1:99999",
    ]
    allowed = ["http://127.0.0.1:8545", "http://10.0.0.5:8545", "https://node.internal/v1/KEY"]
    async with serving_api(harness) as api:
        for index, url in enumerate(refused):
            body = {"name": f"refused{index}", "rpc_url": url}
            status, error = await api.call("POST", "/chains", body)
            assert status == 400 and error["field"] == "rpc_url", (url, error)
            assert url not in error["error"]
        row = await harness.add_chain("http://127.0.0.1:9")
        status, error = await api.call(
            "PATCH", f"/chains/{row.config.name}", {"rpc_url": refused[0]}
        )
        assert (status, error["field"]) == (400, "rpc_url")
        for url in allowed:
            name = harness.chain_config(url).name
            assert (await api.call("POST", "/chains", {"name": name, "rpc_url": url}))[0] == 201
    async with serving_api(harness, allow_link_local_rpc=True) as api:
        name = harness.chain_config(refused[0]).name
        assert (await api.call("POST", "/chains", {"name": name, "rpc_url": refused[0]}))[0] == 201
