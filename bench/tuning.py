"""Worker tuning: the same backlog end to end under different worker concurrency settings.

Each configuration is a `tindexer loadtest` run (fresh services, the worker in its own
process) that differs only in the worker's flags or the chain's RPC knobs. Configurations run
interleaved, round after round, so a change in the machine's load hits all of them alike;
the table reports each one's median and its ratio to the defaults' median.

    .venv/bin/python bench/tuning.py [--blocks 60000] [--rounds 2]   # or `make bench-tuning`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import provenance, write_result

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "activities=8": {"worker": ["--max-concurrent-activities", "8"]},
    "activities=64": {"worker": ["--max-concurrent-activities", "64"]},
    "pollers=2": {"worker": ["--pollers", "2"]},
    "pollers=10": {"worker": ["--pollers", "10"]},
    "workflow_tasks=4": {"worker": ["--max-concurrent-workflow-tasks", "4"]},
    "old rpc knobs (500/50/8)": {
        "chain": {"blocks_per_workflow": 500, "rpc_batch_size": 50, "rpc_max_concurrency": 8}
    },
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from indexer.loadtest import run_loadtest

    runs: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    for round_number in range(1, args.rounds + 1):
        for name, config in CONFIGURATIONS.items():
            result = await run_loadtest(
                args.blocks,
                chain_knobs=config.get("chain"),
                worker_options=config.get("worker"),
                log=lambda *_: None,
            )
            runs[name].append(result.blocks_per_second)
            print(
                f"round {round_number} {name:>26}: {result.blocks_per_second:8,.0f} blocks/s "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    medians = {name: statistics.median(values) for name, values in runs.items()}
    table = [
        {
            "configuration": name,
            "median_blocks_per_second": round(medians[name]),
            "runs": [round(v) for v in runs[name]],
            "ratio_to_defaults": round(medians[name] / medians["defaults"], 3),
        }
        for name in CONFIGURATIONS
    ]
    print()
    for row in table:
        print(
            f"{row['configuration']:>26}: {row['median_blocks_per_second']:8,} blocks/s "
            f"({row['ratio_to_defaults']:.2f}x defaults) runs {row['runs']}"
        )
    path = write_result(
        "tuning",
        {
            **provenance("make bench-tuning (.venv/bin/python bench/tuning.py)"),
            "blocks_per_run": args.blocks,
            "rounds": args.rounds,
            "table": table,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
