"""tindexer on anvil by rpc_batch_size, beside cryo on the same node, with every process's CPU
and where a run's seconds go: until the first batch beyond the probe is stored, and the steady
rate after it (issue 22, item 4).

bench/anvil_shapes.py shows anvil serving 10-call batches ~15 % faster than 100-call ones with
less of its own CPU; this asks whether tindexer gains the same by the chain's rpc_batch_size,
and measures the other differences with cryo: its client's CPU against tindexer's worker,
PostgreSQL and Temporal, and tindexer's start (workflow start, scan, probe batch).

    .venv/bin/python bench/anvil_batches.py        # bench/results/anvil-batches.json
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.anvil import CpuMeter
from bench.anvil_datasets import checker, cryo_once, cryo_venv, node_contents, seeded_anvil
from bench.common import provenance, scratch_directory, write_result

BATCH_SIZES = (100, 25, 10)
PROBE_BLOCKS = 4  # activities/stream.py: a chain's first batch in a worker
FIGURES = ("transactions_per_second", "first_batch_stored_seconds", "steady_blocks_per_second")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timeline(series: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds until more than the probe batch was stored, and blocks/s from then on."""
    first = next(s for s in series if s["indexed"] > PROBE_BLOCKS)
    last = series[-1]
    steady = (last["indexed"] - first["indexed"]) / max(1e-9, last["seconds"] - first["seconds"])
    return {"first_batch_stored_seconds": first["seconds"], "steady_blocks_per_second": steady}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2_000)
    parser.add_argument("--txs-per-block", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="anvil-batches")
    args = parser.parse_args()
    from indexer.loadtest import run_loadtest

    result: dict[str, Any] = provenance(
        " ".join([".venv/bin/python bench/anvil_batches.py", *sys.argv[1:]])
    )
    cryo = cryo_venv()
    work = scratch_directory("tindexer-anvil-batches-")
    runs: dict[str, list[dict[str, Any]]] = {}
    async with seeded_anvil(work, args.blocks, args.txs_per_block) as (anvil, url):
        node = await node_contents(url, args.blocks)
        transactions = sum(len(t) for _, t in node["contents"])
        for number in range(args.rounds):
            for size in BATCH_SIZES:
                run = await run_loadtest(
                    0,
                    rpc_url=url,
                    poll_seconds=0.05,
                    log=lambda *_: None,
                    watch={"anvil": anvil.pid},
                    check=checker(node),
                    chain_knobs={"rpc_batch_size": size},
                )
                runs.setdefault(f"tindexer, rpc_batch_size {size}", []).append(
                    {
                        "transactions_per_second": transactions / run.index_seconds,
                        "cpu_seconds": run.cpu_seconds,
                        **timeline(run.series),
                    }
                )
            own = children_cpu_seconds()
            with CpuMeter(anvil.pid) as meter:
                started = time.perf_counter()
                done = cryo_once(cryo, url, args.blocks, work / f"cryo{number}")
                seconds = time.perf_counter() - started
            runs.setdefault("cryo (blocks, transactions, logs)", []).append(
                {
                    "transactions_per_second": transactions / done["seconds"],
                    "cpu_seconds": {
                        "cryo": round(children_cpu_seconds() - own, 2),
                        "anvil": round(meter.cores * seconds, 2),
                    },
                }
            )
            print(f"round {number + 1} of {args.rounds} done", flush=True)
    cryo_rate = statistics.median(
        r["transactions_per_second"] for r in runs["cryo (blocks, transactions, logs)"]
    )
    table = []
    for name, rs in runs.items():
        row: dict[str, Any] = {"pipeline": name}
        for key in FIGURES:
            if key in rs[0]:
                row[key] = round(statistics.median(r[key] for r in rs), 2)
        row["over_cryo"] = round(row["transactions_per_second"] / cryo_rate, 3)
        row["runs"] = rs
        table.append(row)
        print(f"  {name:40} {row['transactions_per_second']:8.0f} tx/s  {row['over_cryo']}x cryo")
    result.update(blocks=args.blocks, transactions=transactions, rounds=args.rounds, table=table)
    print(f"wrote {write_result(args.name, result)}")


if __name__ == "__main__":
    asyncio.run(main())
