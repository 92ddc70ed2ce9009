"""Datasets on real parts: a chain indexed with blocks and transactions, then given receipts and
logs through the admin API, fills them in for every indexed block; status, /metrics and the row
counters follow it. And `tindexer up` on its embedded defaults stores logs."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from exporter.tracing import configure_tracing
from indexer.datasets import DATASETS
from indexer.embedded import free_port
from indexer.observability import ProgressCollector
from indexer.workflows.inputs import IndexRangeInput, IndexRangeResult
from tests.support.api import ApiClient, run_status_cli
from tests.support.harness import Harness, fully_indexed
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
HEAD = 599  # the sim chain's last block: backlog 600, no block time, so it does not grow
Log = tuple[int, int, int, bytes, bytes, tuple[bytes | None, ...], bytes]

COUNT_RANGE_ROWS = """
SELECT (SELECT count(*) FROM blocks WHERE chain_id = $1 AND number <= $2)            AS blocks,
       (SELECT count(*) FROM transactions WHERE chain_id = $1 AND block_number <= $2) AS transactions,
       (SELECT count(*) FROM transactions WHERE chain_id = $1 AND block_number <= $2
                                            AND gas_used IS NOT NULL)                 AS receipts,
       (SELECT count(*) FROM logs WHERE chain_id = $1 AND block_number <= $2)         AS logs
"""  # noqa: E501
COUNT_ROWS = """
SELECT (SELECT count(*) FROM blocks WHERE chain_id = $1)                                AS blocks,
       (SELECT count(*) FROM transactions WHERE chain_id = $1)                          AS transactions,
       (SELECT count(*) FROM transactions WHERE chain_id = $1 AND gas_used IS NOT NULL) AS receipts,
       (SELECT count(*) FROM logs WHERE chain_id = $1)                                  AS logs
"""  # noqa: E501
STORED_LOGS = """
SELECT block_number, log_index, tx_index, tx_hash, address, topic0, topic1, topic2, topic3, data
  FROM logs
 WHERE chain_id = $1
 ORDER BY block_number, log_index
"""


def _bytes(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.removeprefix("0x"))


async def node_logs(url: str, first: int, last: int) -> list[Log]:
    """Every log of blocks first..last as the chain's eth_getBlockReceipts returns them."""
    logs: list[Log] = []
    async with aiohttp.ClientSession() as session:
        for low in range(first, last + 1, 100):
            body = [
                {"jsonrpc": "2.0", "id": n, "method": "eth_getBlockReceipts", "params": [hex(n)]}
                for n in range(low, min(low + 100, last + 1))
            ]
            async with session.post(url, json=body) as response:
                answers = await response.json(content_type=None)
            for answer in sorted(answers, key=lambda a: a["id"]):
                for receipt in answer["result"]:
                    for log in receipt["logs"]:
                        topics = [_bytes(t) for t in log["topics"]]
                        logs.append(
                            (
                                int(log["blockNumber"], 16),
                                int(log["logIndex"], 16),
                                int(log["transactionIndex"], 16),
                                _bytes(log["transactionHash"]),
                                _bytes(log["address"]),
                                tuple(topics + [None] * (4 - len(topics))),
                                _bytes(log["data"]),
                            )
                        )
    return logs


async def stored_logs(pool: asyncpg.Pool, chain_id: int) -> list[Log]:
    return [
        (
            r["block_number"],
            r["log_index"],
            r["tx_index"],
            bytes(r["tx_hash"]),
            bytes(r["address"]),
            tuple(None if r[f"topic{i}"] is None else bytes(r[f"topic{i}"]) for i in range(4)),
            bytes(r["data"]),
        )
        for r in await pool.fetch(STORED_LOGS, chain_id)
    ]


async def row_counts(pool: asyncpg.Pool, chain_id: int) -> dict[str, int]:
    return dict(await pool.fetchrow(COUNT_ROWS, chain_id))


def rows_indexed(harness: Harness, chain: str) -> dict[str, int]:
    return {
        dataset: int(harness.sample("tindexer_rows_indexed_total", chain=chain, dataset=dataset))
        for dataset in DATASETS
    }


def by_dataset(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["dataset"]: d for d in status["datasets"]}


def table_rows(output: str, chain: str) -> list[list[str]]:
    """The cells of every table line that names `chain`."""
    return [
        [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]
        for line in output.splitlines()
        if chain in line
    ]


async def dataset_gauges(harness: Harness, chain: str) -> dict[str, float | None]:
    """tindexer_dataset_missing_blocks as the progress collector exports it now."""
    metrics = Metrics(CollectorRegistry())
    await ProgressCollector(metrics, harness.pool).refresh()
    return {
        dataset: metrics.registry.get_sample_value(
            "tindexer_dataset_missing_blocks", {"chain": chain, "dataset": dataset}
        )
        for dataset in DATASETS
    }


async def test_adding_receipts_and_logs_fills_every_indexed_block(
    harness: Harness, api: ApiClient, sim_chain, database_url: str
) -> None:
    url = sim_chain(backlog=HEAD + 1)
    row = await harness.add_chain(
        url, blocks_per_workflow=50, catchup_threshold=200, datasets=["blocks", "transactions"]
    )
    name = row.config.name
    async with harness.worker():
        await harness.start(name)
        await wait_until(lambda: fully_indexed(harness, name, HEAD), 90, "blocks+transactions")
    before = await row_counts(harness.pool, row.id)
    assert before["blocks"] == HEAD + 1 and before["transactions"] > 0
    assert (before["receipts"], before["logs"]) == (0, 0)
    assert rows_indexed(harness, name) == before

    status, body = await api.get(f"/chains/{name}/status")
    assert status == 200
    assert [(d["dataset"], d["indexed_blocks"], d["is_caught_up"]) for d in body["datasets"]] == [
        ("blocks", HEAD + 1, True),
        ("transactions", HEAD + 1, True),
    ]

    # The worker is stopped: what status says now is the state the PATCH left, not a race.
    status, patched = await api.call(
        "PATCH", f"/chains/{name}", {"datasets": ["logs", "receipts", "transactions", "blocks"]}
    )
    assert status == 200, patched
    assert patched["datasets"] == list(DATASETS)
    status, body = await api.get(f"/chains/{name}/status")
    assert status == 200
    # No block has every dataset now: the chain is behind by all of them, its blocks are not.
    assert (body["indexed_blocks"], body["missing_blocks_count"]) == (0, HEAD + 1)
    assert body["is_live_sync"] is False
    datasets = by_dataset(body)
    assert list(datasets) == list(DATASETS)
    for dataset in ("blocks", "transactions"):
        assert (datasets[dataset]["missing_blocks_count"], datasets[dataset]["is_caught_up"]) == (
            0,
            True,
        )
    for dataset in ("receipts", "logs"):
        assert datasets[dataset]["indexed_blocks"] == 0
        assert datasets[dataset]["missing_blocks_count"] == HEAD + 1
        assert datasets[dataset]["behind_blocks_count"] == HEAD + 1
        assert datasets[dataset]["is_caught_up"] is False
    assert await dataset_gauges(harness, name) == {
        "blocks": 0,
        "transactions": 0,
        "receipts": HEAD + 1,
        "logs": HEAD + 1,
    }
    behind = f"{HEAD + 1:,}"
    assert table_rows(await asyncio.to_thread(run_status_cli, database_url), name) == [
        [name, f"{HEAD:,}", "-", behind, "1", f"0..{HEAD}", "no"],
        [name, "receipts", "0", behind, behind],
        [name, "logs", "0", behind, behind],
    ]

    async def logs_caught_up() -> bool:
        status, body = await api.get(f"/chains/{name}/status")
        assert status == 200
        return (
            all(d["is_caught_up"] for d in body["datasets"]) and body["missing_blocks_count"] == 0
        )

    async with harness.worker():
        await wait_until(logs_caught_up, 90, "receipts and logs filled in")

    _, body = await api.get(f"/chains/{name}/status")
    assert (body["indexed_blocks"], body["is_live_sync"]) == (HEAD + 1, True)
    for dataset in by_dataset(body).values():
        assert (dataset["indexed_blocks"], dataset["missing_blocks_count"]) == (HEAD + 1, 0)
        assert dataset["behind_blocks_count"] == 0
    assert await harness.ranges(row.id) == [(0, HEAD)]
    assert await dataset_gauges(harness, name) == dict.fromkeys(DATASETS, 0)
    assert table_rows(await asyncio.to_thread(run_status_cli, database_url), name) == [
        [name, f"{HEAD:,}", f"{HEAD:,}", "0", "0", "-", "yes"]
    ]

    expected = await node_logs(url, 0, HEAD)
    assert len({log[0] for log in expected}) > HEAD // 2, "the sim chain's blocks carry logs"
    assert await stored_logs(harness.pool, row.id) == expected
    after = await row_counts(harness.pool, row.id)
    assert (after["blocks"], after["transactions"]) == (before["blocks"], before["transactions"])
    assert after["receipts"] == after["transactions"]
    assert after["logs"] == len(expected)
    # Blocks and transactions were rewritten by the backfill but counted once, when first stored.
    assert rows_indexed(harness, name) == after


async def index_range(harness: Harness, chain: str, start: int, end: int) -> IndexRangeResult:
    return await harness.client.execute_workflow(
        "IndexRange",
        IndexRangeInput(chain, start, end, 3),
        id=f"test-{uuid.uuid4().hex[:8]}",
        task_queue=harness.task_queue,
        result_type=IndexRangeResult,
    )


async def test_a_range_is_fetched_and_stored_with_the_chains_datasets_and_traced(
    harness: Harness, sim_chain
) -> None:
    spans = InMemorySpanExporter()
    configure_tracing("tindexer-test", exporter=spans)
    url = sim_chain(backlog=200)
    every = await harness.add_chain(url)
    only_blocks = await harness.add_chain(url, datasets=["blocks"])
    async with harness.worker():
        await index_range(harness, every.config.name, 0, 99)
        await index_range(harness, only_blocks.config.name, 0, 99)

    def span(name: str, chain: str) -> dict[str, Any]:
        [found] = [
            s
            for s in spans.get_finished_spans()
            if s.name == name and s.attributes["chain"] == chain
        ]
        return dict(found.attributes)

    rows = await harness.pool.fetchrow(COUNT_RANGE_ROWS, every.id, 99)
    assert rows["logs"] > 0 and rows["receipts"] == rows["transactions"] > 0
    fetch, store = (
        span("rpc.fetch_blocks", every.config.name),
        span("postgres.store_range", every.config.name),
    )
    assert (fetch["receipts"], fetch["datasets"]) == (True, "blocks,transactions,receipts,logs")
    assert {key: store[f"rows.{key}"] for key in DATASETS} == dict(rows)
    assert rows_indexed(harness, every.config.name) == dict(rows)

    rows = await harness.pool.fetchrow(COUNT_RANGE_ROWS, only_blocks.id, 99)
    assert dict(rows) == {"blocks": 100, "transactions": 0, "receipts": 0, "logs": 0}
    fetch = span("rpc.fetch_blocks", only_blocks.config.name)
    store = span("postgres.store_range", only_blocks.config.name)
    assert (fetch["receipts"], fetch["datasets"]) == (False, "blocks")
    assert {key: value for key, value in store.items() if key.startswith("rows.")} == {
        "rows.blocks": 100
    }
    receipts = {"provider": "default", "method": "eth_getBlockReceipts", "outcome": "ok"}
    name = "tindexer_rpc_requests_total"
    assert harness.sample(name, chain=only_blocks.config.name, **receipts) == 0
    assert harness.sample(name, chain=every.config.name, **receipts) > 0


async def test_datasets_through_the_api_are_checked_like_the_config(
    harness: Harness, api: ApiClient
) -> None:
    status, created = await api.call(
        "POST",
        "/chains",
        {"name": "logs-only", "rpc_url": "http://127.0.0.1:9", "datasets": ["logs", "blocks"]},
    )
    assert status == 201, created
    harness.chains.append("logs-only")
    assert created["datasets"] == ["blocks", "logs"]
    assert (await api.get("/chains/logs-only"))[1]["datasets"] == ["blocks", "logs"]
    listed = (await api.get("/chains"))[1]["chains"]
    assert [c["datasets"] for c in listed if c["name"] == "logs-only"] == [["blocks", "logs"]]
    status, body = await api.get("/chains/logs-only/status")
    assert status == 200
    assert [d["dataset"] for d in body["datasets"]] == ["blocks", "logs"]

    refused = [
        (
            ["blocks", "receipts"],
            "'receipts' are stored in the transaction rows: add 'transactions'",
        ),
        (["transactions"], "datasets must include 'blocks': every other dataset hangs on them"),
        ([], "datasets must include 'blocks': every other dataset hangs on them"),
        (["blocks", "traces"], "Input should be 'blocks', 'transactions', 'receipts' or 'logs'"),
        ("blocks", "Input should be a valid list"),
        (None, "Input should be a valid list"),
    ]
    for datasets, message in refused:
        status, error = await api.call(
            "POST",
            "/chains",
            {"name": "bad", "rpc_url": "http://127.0.0.1:9", "datasets": datasets},
        )
        assert (status, error) == (400, {"error": message, "field": "datasets"}), datasets
        status, error = await api.call("PATCH", "/chains/logs-only", {"datasets": datasets})
        assert (status, error) == (400, {"error": message, "field": "datasets"}), datasets
    assert (await api.get("/chains/bad"))[0] == 404
    assert (await harness.chain("logs-only")).config.datasets == ["blocks", "logs"]

    status, patched = await api.call("PATCH", "/chains/logs-only", {"datasets": ["blocks"]})
    assert (status, patched["datasets"]) == (200, ["blocks"])
    assert (await harness.chain("logs-only")).config.datasets == ["blocks"]


async def test_up_on_embedded_defaults_stores_logs(
    harness: Harness, tmp_path: Path, database_url: str, temporal_address: str
) -> None:
    """`tindexer up --exit-when-live` with no chain configured: the simulated chain, indexed
    with every dataset (PostgreSQL and Temporal are the session's, to keep the test short)."""
    config = tmp_path / "up.toml"
    config.write_text(
        f'task_queue = "{harness.task_queue}"\n'
        f"api_port = {free_port()}\nmetrics_port = {free_port()}\n"
    )
    harness.chains.append("sim")  # its HeadScan outlives `up`: terminated after the test
    args = [sys.executable, "-m", "indexer.cli", "up", "--config", str(config), "--exit-when-live"]
    args += ["--data-dir", str(tmp_path / "data"), "--backlog", "300", "--block-time", "1"]
    args += ["--sim-port", str(free_port())]
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
    process = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert "sim: live" in text, text
    sim = await harness.chain("sim")
    assert sim.config.datasets == list(DATASETS)
    counts = await row_counts(harness.pool, sim.id)
    assert counts["blocks"] >= 300, counts
    assert counts["logs"] > 0 and counts["receipts"] == counts["transactions"] > 0, counts
