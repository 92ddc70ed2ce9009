"""What following live chains costs Temporal, with the live edge off (live_edge_blocks = 0, every
new block through IndexRange workflows, as before) and on (the default), in one session.

For each case: a fresh Temporal dev server and simulated chain, `--chains` chain configs on that
one chain (3 transactions a block, every dataset), head_poll_interval_seconds = the block time,
one in-process worker (`running_worker`). After the backlog is indexed it counts, for
`--seconds`: new blocks, IndexRange workflow starts, head scans (scan_head activities) and
HeadScan history events (every run of the workflow), each per new block and chain; and samples
every chain's lag (chain head minus newest indexed block) every 0.25 s.

    .venv/bin/python bench/live_edge.py                       # 10 chains, 1 s and 0.25 s blocks
    .venv/bin/python bench/live_edge.py --chains 2 --seconds 20 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import provenance, scratch_directory, write_result

LAG_SAMPLE_SECONDS = 0.25
NEWEST_INDEXED = """
SELECT c.name, max(r.end_block) AS newest
  FROM chains c JOIN indexed_ranges r ON r.chain_id = c.id
 WHERE c.name = ANY($1::text[])
 GROUP BY c.name
"""


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


async def history_events(client: Any, chain: str) -> dict[str, int]:
    """History length of every run of the chain's HeadScan, by run id."""
    from indexer.temporal_client import head_scan_id

    runs: dict[str, int] = {}
    async for execution in client.list_workflows(f"WorkflowId = '{head_scan_id(chain)}'"):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        description = await handle.describe()
        runs[execution.run_id] = description.raw_description.workflow_execution_info.history_length
    return runs


async def run_case(
    database_url: str, chains: int, block_seconds: float, live_edge_blocks: int, args: Any
) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from exporter.metrics import Metrics
    from indexer.config import ChainConfig
    from indexer.embedded import child_process, free_port, sim_chain_args, temporal_dev_server_args
    from indexer.store.chains import upsert_chain
    from indexer.store.db import create_pool
    from indexer.temporal_client import INDEX_RANGE, connect_temporal, start_head_scan
    from indexer.worker import running_worker
    from tests.support.simchain import sim_head

    temporal_port, sim_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        temporal = stack.enter_context(
            child_process(
                temporal_dev_server_args(temporal_port, db_file=work / "temporal.db"),
                "127.0.0.1",
                temporal_port,
                log_path=work / "temporal.log",
            )
        )
        stack.enter_context(
            child_process(
                sim_chain_args(
                    sim_port, backlog=args.backlog, block_time=block_seconds, txs_per_block=3
                ),
                "127.0.0.1",
                sim_port,
                log_path=work / "sim.log",
            )
        )
        url = f"http://127.0.0.1:{sim_port}"
        client = await connect_temporal(f"127.0.0.1:{temporal_port}", tracing=False)
        pool = await create_pool(database_url, max_size=20)
        metrics = Metrics(CollectorRegistry())
        names = [f"b{uuid.uuid4().hex[:8]}" for _ in range(chains)]
        for name in names:
            await upsert_chain(
                pool,
                ChainConfig(
                    name=name,
                    rpc_url=url,
                    head_poll_interval_seconds=block_seconds,
                    live_edge_blocks=live_edge_blocks,
                ),
            )

        def sample(metric: str, **labels: str) -> float:
            return metrics.registry.get_sample_value(metric, labels) or 0.0

        def counters() -> dict[str, float]:
            return {
                "starts": sum(
                    sample("tindexer_workflows_started_total", chain=n, workflow=INDEX_RANGE)
                    for n in names
                ),
                "scans": sum(sample("tindexer_head_scan_activities_total", chain=n) for n in names),
                "live_edge_blocks": sum(
                    sample("tindexer_live_edge_blocks_total", chain=n) for n in names
                ),
            }

        async def newest() -> dict[str, int]:
            rows = await pool.fetch(NEWEST_INDEXED, names)
            return {r["name"]: int(r["newest"]) for r in rows}

        queue = f"bench-{uuid.uuid4().hex[:6]}"
        async with running_worker(client, pool, queue, metrics=metrics):
            for name in names:
                await start_head_scan(client, name, queue)
            deadline = time.monotonic() + 120
            while True:
                head = await sim_head(url)
                indexed = await newest()
                # The backlog, not the head: with the live edge off and short blocks, chains
                # never come within a block of the head.
                if len(indexed) == chains and min(indexed.values()) >= args.backlog - 1:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"backfill: {indexed} of head {head}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # the last starts of the backfill land
            before = counters()
            events_before = {n: await history_events(client, n) for n in names}
            head_before = await sim_head(url)
            cpu_before = time.process_time()
            temporal_cpu_before = process_cpu_seconds(temporal.pid)
            began = time.monotonic()
            lags: list[int] = []
            while time.monotonic() - began < args.seconds:
                head = await sim_head(url)
                indexed = await newest()
                lags += [max(0, head - indexed.get(n, -1)) for n in names]
                await asyncio.sleep(LAG_SAMPLE_SECONDS)
            elapsed = time.monotonic() - began
            after = counters()
            head_after = await sim_head(url)
            cpu = time.process_time() - cpu_before
            temporal_cpu = process_cpu_seconds(temporal.pid) - temporal_cpu_before
            events_after = {n: await history_events(client, n) for n in names}
            for name in names:
                with contextlib.suppress(Exception):
                    await client.get_workflow_handle(f"headscan:{name}").terminate()
        await pool.close()
    new_blocks = (head_after - head_before) * chains
    events = sum(sum(events_after[n].values()) - sum(events_before[n].values()) for n in names)
    return {
        "chains": chains,
        "block_seconds": block_seconds,
        "live_edge_blocks": live_edge_blocks,
        "seconds": round(elapsed, 1),
        "new_blocks_all_chains": new_blocks,
        "index_range_starts_per_new_block": round(
            (after["starts"] - before["starts"]) / new_blocks, 3
        ),
        "head_scans_per_new_block": round((after["scans"] - before["scans"]) / new_blocks, 3),
        "headscan_history_events_per_new_block": round(events / new_blocks, 2),
        "live_edge_share_of_new_blocks": round(
            (after["live_edge_blocks"] - before["live_edge_blocks"]) / new_blocks, 3
        ),
        "lag_blocks": {
            "p50": quantile(lags, 0.5),
            "p99": quantile(lags, 0.99),
            "max": max(lags),
            "mean": round(statistics.fmean(lags), 2),
        },
        "cpu_seconds_per_second": {
            "bench_process_with_worker": round(cpu / elapsed, 3),
            "temporal_dev_server": round(temporal_cpu / elapsed, 3),
        },
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--block-seconds", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backlog", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from indexer.embedded import embedded_postgres

    command = "bench/live_edge.py " + " ".join(sys.argv[1:])
    result: dict[str, Any] = {**provenance(f".venv/bin/python {command.strip()}"), "cases": []}
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(
            embedded_postgres(scratch_directory("tindexer-live-edge-") / "pg")
        )
        for block_seconds in args.block_seconds:
            for live_edge_blocks in (0, 32):
                case = await run_case(
                    database_url, args.chains, block_seconds, live_edge_blocks, args
                )
                print(case, flush=True)
                result["cases"].append(case)
    if not args.no_write:
        print(write_result("live-edge", result))


if __name__ == "__main__":
    asyncio.run(main())
