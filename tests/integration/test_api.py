"""The admin API on real PostgreSQL and Temporal: status, gaps, config changes, auth, backfill."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.activities.chain_cache import RECONCILE_INTERVAL_SECONDS, ChainCache
from indexer.api.openapi import DOCUMENT_PATH
from indexer.config import ChainConfig
from indexer.datasets import DATASETS
from indexer.observability import ProgressCollector
from indexer.store.chains import set_finalized, set_head
from indexer.store.ranges import add_range, coverage
from tests.support.api import TOKEN, ApiClient, run_status_cli
from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness
from tests.support.waiting import wait_until

RATE_FIELDS = ("blocks_per_second", "eta_seconds")


def without_rates(status: dict[str, Any]) -> dict[str, Any]:
    """A status (or a dataset's) without its rate and ETA, which depend on when it is asked."""
    return {key: value for key, value in status.items() if key not in RATE_FIELDS}


async def indexed_exactly(harness: Harness, chain_id: int, ranges: list[tuple[int, int]]) -> bool:
    return await harness.ranges(chain_id) == ranges


async def test_live_chain_with_historical_gap_reports_live_sync_and_backlog(
    harness: Harness, api: ApiClient, sim_chain, database_url: str
) -> None:
    """Issue 4, item 2: blocks 0..53 and the newest up to the head indexed, the middle missing."""
    head = 1_999
    url = sim_chain(backlog=head + 1, txs_per_block=2)
    row = await harness.add_chain(url, blocks_per_workflow=20)
    name = row.config.name
    await set_head(harness.pool, row.id, head)  # as HeadScan's scan would; none runs here
    await set_finalized(harness.pool, row.id, head - 64)  # as its reorg check would
    async with harness.worker():
        for first, last in ((0, 53), (1_990, head)):
            status, body = await api.call(
                "POST", f"/chains/{name}/backfill", {"from": first, "to": last}
            )
            assert status == 202, body
            assert body["mode"] == "direct"
            assert body["missing_blocks"] == last - first + 1
        await wait_until(
            lambda: indexed_exactly(harness, row.id, [(0, 53), (1_990, head)]), 60, "backfills"
        )

    stored = await harness.stored_blocks(row.id)
    expected = {**await expected_blocks(url, 0, 53), **await expected_blocks(url, 1_990, head)}
    assert stored == expected

    gap = (54, 1_989)
    missing = gap[1] - gap[0] + 1
    status, body = await api.get(f"/chains/{name}/status")
    assert status == 200
    rates = {field: body.pop(field) for field in RATE_FIELDS}
    # The worker used the chain's one provider (in rotation, on the simulated chain's id 1337);
    # no head scan ran, so no head.
    shown = {
        "name": "default",
        "url": url.rstrip("/"),
        "healthy": True,
        "head": None,
        "chain_id": 1337,
        "problem": None,
    }
    assert body.pop("providers") == [{**shown, "lag_blocks": None}]
    datasets = [without_rates(dataset) for dataset in body.pop("datasets")]
    assert datasets == [
        {
            "dataset": dataset,
            "indexed_blocks": 64,
            "missing_blocks_count": missing,
            "gap_ranges_count": 1,
            "last_indexed": head,
            "behind_blocks_count": 0,
            "is_caught_up": True,
        }
        for dataset in DATASETS
    ]
    assert body == {
        "chain": name,
        "head": head,
        "finalized_block": head - 64,
        "last_indexed": head,
        "is_live_sync": True,
        "indexed_blocks": 64,
        "missing_blocks_count": missing,
        "gap_ranges_count": 1,
        "largest_gap_start": 54,
        "largest_gap_end": 1_989,
        "historical_progress": 0.032,
    }
    # One sample so far: no rate measured yet, so no ETA rather than a made-up one.
    assert rates == {"blocks_per_second": None, "eta_seconds": None}

    status, every = await api.get("/chains/status")
    assert status == 200
    [listed] = every["chains"]
    assert [without_rates(dataset) for dataset in listed.pop("datasets")] == datasets
    assert listed.pop("providers") == [{**shown, "lag_blocks": None}]
    assert without_rates(listed) == body

    status, page = await api.get(f"/chains/{name}/gaps")
    assert (status, page) == (
        200,
        {
            "chain": name,
            "head": head,
            "gaps": [{"start": 54, "end": 1_989, "size": missing}],
            "next_after": None,
        },
    )

    # What the dashboards plot: the progress collector's gauges, from the same computation.
    metrics = Metrics(CollectorRegistry())
    await ProgressCollector(metrics, harness.pool).refresh()
    gauges = {
        field: metrics.registry.get_sample_value(f"tindexer_chain_{field}", {"chain": name})
        for field in ("head", "last_indexed", "missing_blocks", "gap_ranges", "live_sync")
    }
    assert gauges == {
        "head": head,
        "last_indexed": head,
        "missing_blocks": missing,
        "gap_ranges": 1,
        "live_sync": 1,
    }

    output = await asyncio.to_thread(run_status_cli, database_url)
    [line] = [line for line in output.splitlines() if name in line]
    cells = [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]
    assert cells == [name, "1,999", "1,999", f"{missing:,}", "1", "54..1,989", "yes"]


async def test_rates_and_eta_follow_indexing(harness: Harness, api: ApiClient) -> None:
    row = await harness.add_chain("http://127.0.0.1:9", blocks_per_workflow=10)
    await set_head(harness.pool, row.id, 999)
    name = row.config.name
    _, first = await api.get(f"/chains/{name}/status")
    assert first["blocks_per_second"] is None
    async with harness.pool.acquire() as conn, conn.transaction():
        await add_range(conn, row.id, 0, 499)
    await asyncio.sleep(1.1)
    _, second = await api.get(f"/chains/{name}/status")
    assert second["missing_blocks_count"] == 500
    assert second["blocks_per_second"] > 0
    assert second["eta_seconds"] == round(500 / second["blocks_per_second"], 1)
    async with harness.pool.acquire() as conn, conn.transaction():
        await add_range(conn, row.id, 500, 999)
    _, done = await api.get(f"/chains/{name}/status")
    assert (done["missing_blocks_count"], done["eta_seconds"]) == (0, 0.0)


async def test_patch_applies_every_field_and_rejects_bad_ones(
    harness: Harness, api: ApiClient
) -> None:
    status, created = await api.call(
        "POST", "/chains", {"name": "main-net", "rpc_url": "http://127.0.0.1:9"}
    )
    assert status == 201, created
    assert created == ChainConfig(name="main-net", rpc_url="http://127.0.0.1:9").model_dump()
    harness.chains.append("main-net")  # its HeadScan is terminated after the test
    assert (await api.call("POST", "/chains", created))[0] == 409

    change = {
        "min_replicas": 2,
        "max_replicas": 9,
        "blocks_per_workflow": 250,
        "live_sync_lag": 5,
        "head_poll_interval_seconds": 0.5,
        "parallelism": 4,
        "rpc_url": "https://rpc.example/v1",
    }
    status, patched = await api.call("PATCH", "/chains/main-net", change)
    assert status == 200, patched
    assert patched == {**created, **change, "rpc_url": "https://rpc.example"}  # as reads show it
    stored = await harness.chain("main-net")
    assert stored.config.model_dump() == {**patched, "rpc_url": "https://rpc.example/v1"}
    assert (await api.get("/chains/main-net")) == (200, patched)

    bad = [
        ({"min_replicas": 10, "max_replicas": 9}, "min_replicas"),
        ({"min_replicas": 10}, "min_replicas"),
        ({"max_replicas": 1}, "max_replicas"),
        ({"max_replicas": -1}, "max_replicas"),
        ({"max_replicas": "12"}, "max_replicas"),
        ({"max_replicas": 12.0}, "max_replicas"),
        ({"max_replicas": True}, "max_replicas"),
        ({"blocks_per_workflow": 0}, "blocks_per_workflow"),
        ({"blocks_per_workflow": 100_001}, "blocks_per_workflow"),
        ({"start_block": 2**63}, "start_block"),
        ({"replicas": 3}, "replicas"),
        ({"name": "other"}, "name"),
        ({"rpc_url": "ftp://x"}, "rpc_url"),
        ({"rpc_url": "http://a b"}, "rpc_url"),
        ({"rpc_url": "http://a\u0000"}, "rpc_url"),
    ]
    for body, field in bad:
        status, error = await api.call("PATCH", "/chains/main-net", body)
        assert (status, error["field"]) == (400, field), (body, error)
        assert error["error"]
    assert (await harness.chain("main-net")).config == stored.config

    for data, content_type, expected in (
        ("{", "application/json", 400),
        ("[]", "application/json", 400),
        ('{"max_replicas": NaN}', "application/json", 400),
        ('{"max_replicas": 1e999}', "application/json", 400),
        ('{"max_replicas": 3}', "text/plain", 415),
        ('{"max_replicas": 3}', "application/x-www-form-urlencoded", 415),
        ('{"x": "' + "a" * (1024 * 1024) + '"}', "application/json", 413),
    ):
        status, error = await api.call(
            "PATCH", "/chains/main-net", data=data, headers={"Content-Type": content_type}
        )
        assert status == expected, (data[:40], error)
        assert set(error) == {"error", "field"}
    assert (await harness.chain("main-net")).config == stored.config

    assert (await api.call("PATCH", "/chains/nope", {"max_replicas": 3}))[0] == 404
    assert (await api.get("/chains/nope"))[0] == 404
    for odd in ("NOT%20A%20NAME", "a%00b", "%ED%A0%80", "x" * 300):
        for suffix in ("", "/status", "/gaps"):
            assert (await api.get(f"/chains/{odd}{suffix}"))[0] == 404, (odd, suffix)
        assert (await api.call("PATCH", f"/chains/{odd}", {"max_replicas": 3}))[0] == 404
    status, error = await api.call("POST", "/chains", {"name": "status", "rpc_url": "http://x"})
    assert (status, error["field"]) == (400, "name")
    status, error = await api.call("POST", "/chains", {"name": "x", "rpc_url": "http://x", "y": 1})
    assert (status, error["field"]) == (400, "y")


async def test_patch_reaches_running_workers_within_one_reconcile_interval(
    harness: Harness, api: ApiClient
) -> None:
    row = await harness.add_chain("http://127.0.0.1:9", max_replicas=3)
    name = row.config.name
    chains = ChainCache(harness.pool, harness.metrics)
    try:
        assert (await chains.chain(name)).config.max_replicas == 3
        status, _ = await api.call("PATCH", f"/chains/{name}", {"max_replicas": 9})
        assert status == 200
        await asyncio.sleep(RECONCILE_INTERVAL_SECONDS)
        assert (await chains.chain(name)).config.max_replicas == 9
    finally:
        await chains.close()


async def test_mutations_need_the_token(harness: Harness, api: ApiClient) -> None:
    row = await harness.add_chain("http://127.0.0.1:9")
    name = row.config.name
    await set_head(harness.pool, row.id, 100)
    before = await harness.pool.fetch("SELECT name, config::text, head FROM chains ORDER BY id")
    attempts = [
        ("POST", "/chains", {"name": "sneaky", "rpc_url": "http://x"}),
        ("PATCH", f"/chains/{name}", {"max_replicas": 50}),
        ("DELETE", f"/chains/{name}", None),
        ("POST", f"/chains/{name}/backfill", {"from": 0, "to": 10}),
        ("PATCH", "/chains/nope", {"max_replicas": 50}),
        ("PUT", "/chains", None),
    ]
    for token in (None, "", "wrong", TOKEN + "x", TOKEN[:-1], "Basic " + TOKEN):
        for method, path, body in attempts:
            status, error = await api.call(method, path, body, token=token)
            assert (status, error["field"]) == (401, "Authorization"), (token, method, path)
    status, error = await api.call(
        "PATCH", f"/chains/{name}", data="x" * (2 * 1024 * 1024), token=None,
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    assert status == 401
    after = await harness.pool.fetch("SELECT name, config::text, head FROM chains ORDER BY id")
    assert after == before
    count = await harness.client.count_workflows(f"WorkflowId STARTS_WITH 'index:{name}:'")
    assert count.count == 0
    assert (await api.get(f"/chains/{name}"))[0] == 200  # reads need no token


async def test_gaps_are_paged_oldest_first(harness: Harness, api: ApiClient) -> None:
    row = await harness.add_chain("http://127.0.0.1:9", start_block=5)
    name = row.config.name
    await set_head(harness.pool, row.id, 1_000)
    async with harness.pool.acquire() as conn, conn.transaction():
        for start in range(10, 1_000, 40):  # 25 ranges of 20 blocks; the head block is missing
            await add_range(conn, row.id, start, start + 19)
    expected = (await coverage(harness.pool, row.id, 5, 1_000)).gaps
    assert len(expected) == 26 and expected[0] == (5, 9) and expected[-1] == (990, 1_000)

    pages, after = [], None
    while True:
        query = "?limit=10" + (f"&after={after}" if after is not None else "")
        status, page = await api.get(f"/chains/{name}/gaps{query}")
        assert status == 200
        pages.append(len(page["gaps"]))
        after = page["next_after"]
        for gap in page["gaps"]:
            assert gap["size"] == gap["end"] - gap["start"] + 1
        expected_page = expected[sum(pages[:-1]) : sum(pages)]
        assert [(g["start"], g["end"]) for g in page["gaps"]] == expected_page
        if after is None:
            break
    assert pages == [10, 10, 6]
    # `after` inside a gap: that gap began earlier, so the page starts with the next one.
    _, page = await api.get(f"/chains/{name}/gaps?after=52&limit=1")
    assert page["gaps"] == [{"start": 70, "end": 89, "size": 20}]
    assert page["next_after"] == 70
    for query in ("limit=0", "limit=1001", "limit=x", "after=-1", "after=1.5", "limit=%C2%B2"):
        status, error = await api.get(f"/chains/{name}/gaps?{query}")
        assert (status, error["field"]) == (400, query.split("=")[0]), query


async def test_backfill_big_range_goes_through_a_scheduler(
    harness: Harness, api: ApiClient, sim_chain
) -> None:
    url = sim_chain(backlog=1_000, txs_per_block=1)
    row = await harness.add_chain(url, blocks_per_workflow=25, max_inflight_ranges=8)
    name = row.config.name
    assert (await api.call("POST", f"/chains/{name}/backfill", {"from": 0, "to": 9}))[0] == 409
    await set_head(harness.pool, row.id, 999)
    for body, status_code, field in (
        ({"from": 10, "to": 9}, 400, "from"),
        ({"from": 0, "to": 1_000}, 409, "to"),
        ({"from": 0}, 400, "to"),
        ({"from": "0", "to": 5}, 400, "from"),
        ({"from": 0, "to": 5, "x": 1}, 400, "x"),
    ):
        status, error = await api.call("POST", f"/chains/{name}/backfill", body)
        assert (status, error["field"]) == (status_code, field), body
    assert (await api.call("POST", "/chains/nope/backfill", {"from": 0, "to": 1}))[0] == 404

    async with harness.worker():
        status, result = await api.call(
            "POST", f"/chains/{name}/backfill", {"from": 100, "to": 899}
        )
        assert status == 202, result
        assert result == {
            "chain": name,
            "from": 100,
            "to": 899,
            "missing_blocks": 800,
            "ranges": 32,
            "mode": "scheduler",
            "started": 1,
            "workflow_id": f"backfill:{name}:100-899",
        }
        await wait_until(lambda: indexed_exactly(harness, row.id, [(100, 899)]), 60, "backfill")
        handle = harness.client.get_workflow_handle(f"backfill:{name}:100-899")
        assert await handle.result() == 32
        # Already indexed: nothing to start.
        status, again = await api.call("POST", f"/chains/{name}/backfill", {"from": 100, "to": 899})
        assert (status, again["mode"], again["started"]) == (202, "none", 0)
    assert sorted(await harness.stored(row.id)) == list(range(100, 900))


async def test_health_readiness_and_document(api: ApiClient) -> None:
    assert await api.get("/healthz") == (200, {"status": "ok"})
    assert await api.get("/readyz") == (
        200,
        {"status": "ready", "postgres": "ok", "temporal": "ok"},
    )
    status, document = await api.get("/openapi.json")
    assert status == 200
    assert document == json.loads(DOCUMENT_PATH.read_text())
    status, error = await api.call("PUT", "/chains/x")
    assert status == 405 and error["field"] is None
    assert (await api.get("/nowhere"))[0] == 404
