"""Tuning: worker concurrency end to end, and the Temporal side of scheduling, one knob at a time.

Two tables, each configuration differing from the defaults in one knob:
  * worker: a `tindexer loadtest` run (fresh services, one worker process per core, metrics
    and tracing on) per configuration — the worker's max concurrent activities and workflow
    tasks, its pollers, and the range size;
  * temporal: the scheduling benchmark's run (750,000 blocks on a fresh dev server) per
    configuration — how many Temporal connections the start activity uses, and the server's
    frontend.namespaceRPS.
Configurations run interleaved, round after round, so a change in the machine's load hits all
of them alike; each row reports its median and its ratio to the defaults' median.

    .venv/bin/python bench/tuning.py [--blocks 150000] [--rounds 2]   # or `make bench-tuning`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import provenance, write_result

WORKERS = os.cpu_count() or 1

WORKER_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "activities=8": {"worker": ["--max-concurrent-activities", "8"]},
    "activities=64": {"worker": ["--max-concurrent-activities", "64"]},
    "workflow_tasks=4": {"worker": ["--max-concurrent-workflow-tasks", "4"]},
    "pollers=2": {"worker": ["--pollers", "2"]},
    "pollers=10": {"worker": ["--pollers", "10"]},
    "blocks_per_workflow=1000": {"chain": {"blocks_per_workflow": 1000}},
    "blocks_per_workflow=4000": {"chain": {"blocks_per_workflow": 4000}},
}

TEMPORAL_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "start_clients=2": {"start_clients": 2},
    "start_clients=4": {"start_clients": 4},
    "namespaceRPS=50": {"namespace_rps": 50},
    "namespaceRPS=200": {"namespace_rps": 200},
}


async def interleaved(
    configurations: dict[str, dict[str, Any]],
    rounds: int,
    measure: Callable[[dict[str, Any]], Awaitable[float]],
    unit: str,
    higher_is_better: bool,
) -> list[dict[str, Any]]:
    """Every configuration once per round; the table of medians and ratios to the defaults."""
    runs: dict[str, list[float]] = {name: [] for name in configurations}
    for round_number in range(1, rounds + 1):
        for name, config in configurations.items():
            value = await measure(config)
            runs[name].append(value)
            print(
                f"round {round_number} {name:>26}: {value:10,.2f} {unit} "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    medians = {name: statistics.median(values) for name, values in runs.items()}
    table = [
        {
            "configuration": name,
            "median": round(medians[name], 2),
            "unit": unit,
            "runs": [round(v, 2) for v in runs[name]],
            "ratio_to_defaults": round(medians[name] / medians["defaults"], 3),
            "better_than_defaults": (medians[name] > medians["defaults"]) == higher_is_better
            and medians[name] != medians["defaults"],
        }
        for name in configurations
    ]
    for row in table:
        print(f"{row['configuration']:>26}: {row['ratio_to_defaults']:.2f}x defaults {row['runs']}")
    return table


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=150_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from bench.schedule import Knobs, schedule_once
    from indexer.config import ChainConfig
    from indexer.embedded import embedded_postgres
    from indexer.loadtest import run_loadtest

    async def end_to_end(config: dict[str, Any]) -> float:
        result = await run_loadtest(
            args.blocks,
            chain_knobs=config.get("chain"),
            worker_options=config.get("worker"),
            workers=WORKERS,
            log=lambda *_: None,
        )
        return result.blocks_per_second

    defaults = ChainConfig(name="d", rpc_url="http://x")
    print(f"worker: {args.blocks:,} blocks end to end, {WORKERS} workers, blocks/s")
    worker_table = await interleaved(
        WORKER_CONFIGURATIONS, args.rounds, end_to_end, "blocks/s", higher_is_better=True
    )
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL") or stack.enter_context(
            embedded_postgres(Path(tempfile.mkdtemp()) / "pg")
        )

        async def scheduling(config: dict[str, Any]) -> float:
            knobs = Knobs(
                blocks=750_000,
                blocks_per_workflow=defaults.blocks_per_workflow,
                scheduler_batch_size=defaults.scheduler_batch_size,
                parallelism=defaults.effective_parallelism(),
                **config,
            )
            return float((await schedule_once(knobs, database_url))["seconds"])

        print("temporal: 750,000 blocks scheduled, seconds")
        temporal_table = await interleaved(
            TEMPORAL_CONFIGURATIONS, args.rounds, scheduling, "seconds", higher_is_better=False
        )
    path = write_result(
        "tuning",
        {
            **provenance("make bench-tuning (.venv/bin/python bench/tuning.py)"),
            "rounds": args.rounds,
            "worker": {
                "blocks_per_run": args.blocks,
                "workers": WORKERS,
                "measure": "blocks/s end to end (higher is better)",
                "table": worker_table,
            },
            "temporal": {
                "blocks": 750_000,
                "measure": "seconds to schedule (lower is better)",
                "table": temporal_table,
            },
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
