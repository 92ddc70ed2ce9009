"""What anvil serves fastest: blocks + receipts by request shape (batch size x requests in
flight), beside cryo on the same node, with the node's CPU for each (issue 22, item 4).

bench-anvil-datasets finds anvil the bottleneck: its CPU for the 2,000 blocks is about the same
under the raw ceiling and under tindexer. This asks whether another shape gets more from the
same node: anvil answers the calls of one batch in turn, separate requests at once.

    .venv/bin/python bench/anvil_shapes.py        # bench/results/anvil-shapes.json
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.anvil import CpuMeter
from bench.anvil_datasets import cryo_once, cryo_venv, raw_ceiling, seeded_anvil
from bench.common import provenance, scratch_directory, write_result

SHAPES = [(100, 2), (50, 4), (20, 8), (10, 16), (5, 32), (1, 32), (1, 64)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2_000)
    parser.add_argument("--txs-per-block", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="anvil-shapes")
    args = parser.parse_args()
    command = " ".join([".venv/bin/python bench/anvil_shapes.py", *sys.argv[1:]])
    result: dict[str, Any] = provenance(command)
    cryo = cryo_venv()
    work = scratch_directory("tindexer-anvil-shapes-")
    runs: dict[str, list[dict[str, float]]] = {}
    async with seeded_anvil(work, args.blocks, args.txs_per_block) as (anvil, url):
        for number in range(args.rounds):
            for batch_size, in_flight in SHAPES:
                with CpuMeter(anvil.pid) as meter:
                    started = time.perf_counter()
                    rate = await raw_ceiling(url, args.blocks, batch_size, in_flight)
                    seconds = time.perf_counter() - started
                runs.setdefault(f"batch {batch_size} x {in_flight} in flight", []).append(
                    {"blocks_per_second": rate, "anvil_cpu_seconds": meter.cores * seconds}
                )
            with CpuMeter(anvil.pid) as meter:
                started = time.perf_counter()
                done = cryo_once(cryo, url, args.blocks, work / f"cryo{number}")
                seconds = time.perf_counter() - started
            runs.setdefault("cryo (blocks, transactions, logs)", []).append(
                {
                    "blocks_per_second": args.blocks / done["seconds"],
                    "anvil_cpu_seconds": meter.cores * seconds,
                }
            )
            print(f"round {number + 1} of {args.rounds} done", flush=True)
    table = [
        {
            "shape": shape,
            "blocks_per_second": round(statistics.median(r["blocks_per_second"] for r in rs), 1),
            "anvil_cpu_seconds": round(statistics.median(r["anvil_cpu_seconds"] for r in rs), 2),
            "runs_blocks_per_second": [round(r["blocks_per_second"], 1) for r in rs],
        }
        for shape, rs in runs.items()
    ]
    for row in table:
        print(f"  {row['shape']:40} {row['blocks_per_second']:8.1f} blocks/s"
              f"  anvil {row['anvil_cpu_seconds']:5.2f} CPU-s")  # fmt: skip
    result.update(blocks=args.blocks, rounds=args.rounds, table=table)
    print(f"wrote {write_result(args.name, result)}")


if __name__ == "__main__":
    asyncio.run(main())
