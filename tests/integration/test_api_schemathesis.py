"""Schemathesis against the served OpenAPI document, on a real `tindexer api` process.

With the token: at least 1,000 generated requests, no 5xx, every response as documented (all
of schemathesis' checks). Without it: every mutating request is a 401 and nothing changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus

from indexer.config import ChainConfig
from indexer.store.chains import set_head, upsert_chain
from indexer.store.db import create_pool
from indexer.store.ranges import add_range
from tests.support.api import AUTH, api_process

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
# JSON Schema cannot state rules across fields or against stored state (min_replicas <=
# max_replicas, from <= to, to <= head), so a schema-valid request may rightly get a 400.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "404", "409"]
"""


async def seed(database_url: str) -> None:
    """`mainnet` (the document's example name) with a head and gaps, so handlers go deep."""
    pool = await create_pool(database_url, max_size=2)
    try:
        row = await upsert_chain(pool, ChainConfig(name="mainnet", rpc_url="http://127.0.0.1:9"))
        await set_head(pool, row.id, 5_000)
        async with pool.acquire() as conn, conn.transaction():
            for start in range(0, 5_000, 100):
                await add_range(conn, row.id, start, start + 49)
    finally:
        await pool.close()


async def snapshot(database_url: str) -> list[Any]:
    conn = await asyncpg.connect(database_url)
    try:
        return [
            await conn.fetch("SELECT id, name, config::text, head FROM chains ORDER BY id"),
            await conn.fetch("SELECT * FROM indexed_ranges ORDER BY chain_id, start_block"),
            await conn.fetchval("SELECT count(*) FROM blocks"),
        ]
    finally:
        await conn.close()


def schemathesis(base: str, tmp_path: Path, label: str, *options: str) -> list[dict[str, Any]]:
    """Run the CLI; return the HAR entries (one per request sent) after checking it passed."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    har = tmp_path / f"{label}.har"
    args = [str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run"]
    args += [f"{base}/openapi.json", "--checks", "all", "--seed", "4"]
    args += ["--report", "har", "--report-har-path", str(har), *options]
    done = subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    entries: list[dict[str, Any]] = json.loads(har.read_text())["log"]["entries"]
    return entries


async def stop_workflows_on(client: Client, task_queue: str) -> None:
    """The API started HeadScans and backfills on a queue no worker polls: end them."""
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        if execution.status == WorkflowExecutionStatus.RUNNING:
            with contextlib.suppress(Exception):
                await client.get_workflow_handle(execution.id).terminate()


async def test_generated_requests_get_documented_answers(
    database_url: str, temporal_address: str, temporal_client: Client, tmp_path: Path
) -> None:
    await seed(database_url)
    task_queue = f"st-{uuid.uuid4().hex[:8]}"
    try:
        with api_process(database_url, temporal_address, task_queue, tmp_path) as base:
            header = f"Authorization: {AUTH['Authorization']}"
            entries = await asyncio.to_thread(
                schemathesis, base, tmp_path, "authorized", "-H", header, "-n", "80"
            )
    finally:
        await stop_workflows_on(temporal_client, task_queue)
    statuses = collections.Counter(entry["response"]["status"] for entry in entries)
    print(f"schemathesis with token: {len(entries)} requests, by status {sorted(statuses.items())}")
    assert len(entries) >= 1_000, statuses
    assert not [status for status in statuses if status >= 500], statuses
    # The run reached the handlers' real work, not only their validation.
    for status in (200, 201, 202, 204, 400, 404, 409, 415):
        assert statuses[status] > 0, statuses


async def test_without_a_token_every_mutation_is_refused_and_nothing_changes(
    database_url: str, temporal_address: str, temporal_client: Client, tmp_path: Path
) -> None:
    await seed(database_url)
    before = await snapshot(database_url)
    task_queue = f"st-{uuid.uuid4().hex[:8]}"
    try:
        with api_process(database_url, temporal_address, task_queue, tmp_path) as base:
            methods = ["--include-method", "POST", "--include-method", "PATCH"]
            methods += ["--include-method", "DELETE"]
            entries = await asyncio.to_thread(
                schemathesis, base, tmp_path, "anonymous", *methods, "-n", "40"
            )
    finally:
        await stop_workflows_on(temporal_client, task_queue)
    mutating = [e for e in entries if e["request"]["method"] not in READ_METHODS]
    print(f"schemathesis without token: {len(mutating)} mutating requests of {len(entries)}")
    assert len(mutating) >= 500
    assert {e["response"]["status"] for e in mutating} == {401}
    assert await snapshot(database_url) == before
    started = await temporal_client.count_workflows(f"TaskQueue = '{task_queue}'")
    assert started.count == 0
