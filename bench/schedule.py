"""Scheduling: how fast a backlog is covered by started IndexRange workflows, per block vs ranges.

Against a real Temporal dev server (SQLite with WAL pragmas, the embedded default), a fresh one
per run so open workflows from one run never slow the next. The real Scheduler workflow and
start activities run on a worker; the IndexRange workflows they start go to a task queue no
worker polls, so this measures scheduling alone. The clock runs from starting the Scheduler to
its completion (the last batch of starts acknowledged). `max_inflight_ranges` is lifted: this
is the old plan's stress test.

    .venv/bin/python bench/schedule.py            # or `make bench-schedule`
    .venv/bin/python bench/schedule.py --quick    # smaller backlogs, no sweep
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, provenance, scratch_directory, write_result


@dataclass
class Knobs:
    blocks: int
    blocks_per_workflow: int
    scheduler_batch_size: int
    parallelism: int
    continue_as_new_threshold: int = 2_000
    start_clients: int = 1  # Temporal connections the start activity uses in turn
    namespace_rps: int | None = None  # the server's frontend.namespaceRPS; None: its default


async def schedule_once(knobs: Knobs, database_url: str) -> dict[str, Any]:
    """One run on a fresh dev server: seconds from Scheduler start to every range started."""
    from prometheus_client import CollectorRegistry
    from temporalio.worker import Worker

    from exporter.metrics import Metrics
    from indexer.activities.chain_cache import ChainCache
    from indexer.activities.scheduling import SchedulingActivities
    from indexer.config import ChainConfig
    from indexer.embedded import child_process, free_port, temporal_dev_server_args
    from indexer.store.chains import upsert_chain
    from indexer.store.db import create_pool
    from indexer.temporal_client import connect_temporal, fail_fast_client
    from indexer.workflows.inputs import Range, SchedulerInput
    from indexer.workflows.scheduler import Scheduler

    port = free_port()
    with (
        tempfile.TemporaryDirectory() as work,
        child_process(
            temporal_dev_server_args(
                port,
                db_file=Path(work) / "temporal.db",
                dynamic_config=None
                if knobs.namespace_rps is None
                else {"frontend.namespaceRPS": str(knobs.namespace_rps)},
            ),
            "127.0.0.1",
            port,
            log_path=Path(work) / "temporal.log",
        ),
    ):
        client = await connect_temporal(f"127.0.0.1:{port}", tracing=False)
        pool = await create_pool(database_url, max_size=4)
        chain = f"s{uuid.uuid4().hex[:8]}"
        await upsert_chain(
            pool,
            ChainConfig(
                name=chain,
                rpc_url="http://127.0.0.1:9",  # never called: nothing fetches here
                blocks_per_workflow=knobs.blocks_per_workflow,
                scheduler_batch_size=knobs.scheduler_batch_size,
                parallelism=knobs.parallelism,
                continue_as_new_threshold=knobs.continue_as_new_threshold,
                max_inflight_ranges=100_000,
            ),
        )
        metrics = Metrics(CollectorRegistry())
        chains = ChainCache(pool, metrics)
        scheduling = SchedulingActivities(
            client,
            chains,
            "unpolled",
            starters=[await fail_fast_client(client) for _ in range(knobs.start_clients)],
        )
        queue = "bench-scheduler"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[Scheduler],
            activities=[scheduling.start_ranges, scheduling.scheduler_tick],
        ):
            started = time.perf_counter()
            await client.execute_workflow(
                Scheduler.run,
                SchedulerInput(chain, [Range(0, knobs.blocks - 1)]),
                id=f"scheduler:{chain}",
                task_queue=queue,
            )
            seconds = time.perf_counter() - started
        workflows = -(-knobs.blocks // knobs.blocks_per_workflow)
        for _ in range(50):  # visibility trails the starts by a moment
            started_count = (
                await client.count_workflows(f"WorkflowId STARTS_WITH 'index:{chain}:'")
            ).count
            if started_count == workflows:
                break
            await asyncio.sleep(0.1)
        await pool.close()
    assert started_count == workflows, (started_count, workflows)
    rate_limited = metrics.registry.get_sample_value(
        "tindexer_rate_limited_total", {"source": "temporal"}
    )
    return {
        **vars(knobs),
        "workflows": workflows,
        "seconds": round(seconds, 3),
        "blocks_per_second": round(knobs.blocks / seconds),
        "workflows_per_second": round(workflows / seconds, 1),
        "rate_limited": rate_limited or 0,
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    middle = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**middle, "runs_seconds": [r["seconds"] for r in runs]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--keep-sweep",
        action="store_true",
        help="Re-measure per-block vs ranges only; keep the committed sweep (with its provenance).",
    )
    args = parser.parse_args()
    from indexer.config import ChainConfig
    from indexer.embedded import embedded_postgres

    defaults = ChainConfig(name="d", rpc_url="http://x")
    default = {
        "blocks_per_workflow": defaults.blocks_per_workflow,
        "scheduler_batch_size": defaults.scheduler_batch_size,
        "parallelism": defaults.effective_parallelism(),
    }
    per_block_blocks, range_blocks = (2_000, 75_000) if args.quick else (20_000, 750_000)
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL") or stack.enter_context(
            embedded_postgres(scratch_directory("tindexer-schedule-") / "pg")
        )

        async def measure(repeats: int, **overrides: Any) -> dict[str, Any]:
            knobs = Knobs(**{**default, **overrides})
            runs = [await schedule_once(knobs, database_url) for _ in range(repeats)]
            result = median_run(runs)
            print(
                f"  blocks {knobs.blocks:>8,} per_workflow {knobs.blocks_per_workflow:>5} "
                f"batch {knobs.scheduler_batch_size:>5} parallelism {knobs.parallelism:>3}: "
                f"{result['seconds']:7.2f} s  {result['blocks_per_second']:>10,} blocks/s  "
                f"{result['workflows_per_second']:>7} workflows/s",
                flush=True,
            )
            return result

        print("per-block design vs ranges (medians):")
        per_block = await measure(args.repeats, blocks=per_block_blocks, blocks_per_workflow=1)
        ranges = await measure(args.repeats, blocks=range_blocks)
        sweep: list[dict[str, Any]] = []
        previous = RESULTS / "schedule.json"
        if args.keep_sweep and previous.exists():
            old = json.loads(previous.read_text())
            sweep = old["sweep"]
            sweep_provenance = {k: old[k] for k in ("date", "commit", "machine", "defaults")}
        elif not args.quick:
            print("sweep, one knob at a time around the defaults (one run each):")
            for batch in (50, 100, 250, 500, 1000):
                sweep.append(await measure(1, blocks=range_blocks, scheduler_batch_size=batch))
            for parallelism in (4, 8, 16, 32, 64):
                sweep.append(await measure(1, blocks=range_blocks, parallelism=parallelism))
            for size in (100, 250, 500, 1000, 2000):
                sweep.append(await measure(1, blocks=range_blocks, blocks_per_workflow=size))
    ratio = ranges["blocks_per_second"] / per_block["blocks_per_second"]
    flags = " --quick" if args.quick else " --keep-sweep" if args.keep_sweep else ""
    command = f"make bench-schedule (.venv/bin/python bench/schedule.py{flags})"
    path = write_result(
        "schedule" if not args.quick else "schedule-quick",
        {
            **provenance(command),
            "per_block": per_block,
            "ranges": ranges,
            "ratio": round(ratio, 1),
            "defaults": default,
            "sweep": sweep,
            **({"sweep_provenance": sweep_provenance} if args.keep_sweep and sweep else {}),
        },
    )
    print(
        f"\nranges schedule {ratio:,.1f}x more blocks/s than one workflow per block; "
        f"{range_blocks:,} blocks in {ranges['seconds']} s (target < 5 s). wrote {path}"
    )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
