"""The same mainnet-shaped backlog on 1, 2 and 3 worker hosts: throughput and what each costs.

Hosts are network namespaces on a private bridge (tests/support/cluster.py, as `make cluster`
uses): `core` runs PostgreSQL and the Temporal dev server, `chain` the simulated chain with the
`mainnet` profile (~150 transactions a block, receipts and logs), and each worker host one
`tindexer worker`. Every process reaches the others only through the bridge. For each count of
worker hosts, a fresh cluster indexes `--blocks` blocks (every dataset) from nothing; the
backfill time runs from the HeadScan start until every block is recorded.

CPU seconds and peak RSS are read with psutil from every process of each namespace
(`ip netns pids`), sampled every 0.5 s (a process's last sample counts once it is gone:
PostgreSQL's short-lived backends lose at most half a second each). On this 2-core machine the
point is correctness and the shape of the cost, not scaling: the hosts share the same cores.

    .venv/bin/python bench/cluster.py        # or `make bench-cluster` (root: namespaces)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import provenance, scratch_directory, write_result

PROFILE = "mainnet"
BLOCKS_PER_WORKFLOW = 1000
SLOTS_PER_WORKER = 4  # ranges at once per worker host
SAMPLE_SECONDS = 0.5


@dataclass
class Usage:
    """CPU seconds (last sample per pid) and the peak of the summed RSS of a group of pids."""

    cpu: dict[int, float] = field(default_factory=dict)
    peak_rss: int = 0

    def sample(self, pids: list[int]) -> None:
        rss = 0
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                with process.oneshot():
                    times = process.cpu_times()
                    self.cpu[pid] = times.user + times.system
                    rss += process.memory_info().rss
        self.peak_rss = max(self.peak_rss, rss)

    def report(self, seconds: float) -> dict[str, float]:
        cpu = sum(self.cpu.values())
        return {
            "cpu_seconds": round(cpu, 1),
            "cores": round(cpu / seconds, 2),
            "peak_rss_mib": round(self.peak_rss / 2**20, 1),
        }


def _named(pids: list[int], word: str) -> list[int]:
    """The pids whose command line mentions `word` (the core host's two servers apart)."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if any(word in part for part in psutil.Process(pid).cmdline()[:2]):
                found.append(pid)
    return found


async def one_run(workers: int, blocks: int, work: Path) -> dict[str, Any]:
    """A fresh cluster indexing `blocks` mainnet-shaped blocks with `workers` worker hosts."""
    import asyncpg

    from indexer.lifecycle import close_pool
    from indexer.store.db import create_pool
    from indexer.temporal_client import connect_temporal
    from tests.support.cluster import cluster
    from tests.support.cluster_hosts import start_core, start_sim_chain, start_worker
    from tests.support.faults import indexed_blocks
    from tests.support.harness import Harness

    log_dir = work / f"{workers}-workers"
    log_dir.mkdir()
    with cluster(log_dir) as made:
        core = start_core(made, log_dir / "pgdata")
        chain_url = start_sim_chain(made, backlog=blocks, block_time=0, profile=PROFILE)
        admin = await asyncpg.connect(core.postgres_url)
        name = f"bench_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        database_url = f"{core.postgres_url.rsplit('/', 1)[0]}/{name}"
        pool = await create_pool(database_url, max_size=4)
        try:
            client = await connect_temporal(core.temporal_address)
            harness = Harness(pool, client)
            started = [
                start_worker(
                    made,
                    f"worker-{n}",
                    harness.task_queue,
                    database_url,
                    core.temporal_address,
                    SLOTS_PER_WORKER,
                )
                for n in range(1, workers + 1)
            ]
            await asyncio.gather(*(worker.ready() for _, worker in started))
            row = await harness.add_chain(chain_url, blocks_per_workflow=BLOCKS_PER_WORKFLOW)
            core_pids = made.pids(core.host)
            parts = {
                "temporal": (lambda: _named(made.pids(core.host), "temporal"), Usage()),
                "postgres": (lambda: _named(made.pids(core.host), "postgres"), Usage()),
                "chain": (lambda: made.pids(made.hosts["chain"]), Usage()),
            }
            for host, _ in started:
                parts[host.role] = ((lambda h=host: made.pids(h)), Usage())  # type: ignore[misc]
            assert core_pids, "nothing runs on the core host"
            began = time.monotonic()
            await harness.start(row.config.name)
            done = 0
            while done < blocks:
                for pids, usage in parts.values():
                    usage.sample(pids())
                await asyncio.sleep(SAMPLE_SECONDS)
                done = await indexed_blocks(pool, row.id)
                if time.monotonic() - began > 1800:
                    raise RuntimeError(f"only {done} of {blocks} blocks after 30 minutes")
            seconds = time.monotonic() - began
            for pids, usage in parts.values():
                usage.sample(pids())
            stored = await pool.fetchval("SELECT count(*) FROM blocks WHERE chain_id = $1", row.id)
            txs = await pool.fetchval(
                "SELECT count(*) FROM transactions WHERE chain_id = $1", row.id
            )
            await harness.terminate_chain_workflows()
        finally:
            await close_pool(pool)
    usage = {part: used.report(seconds) for part, (_, used) in parts.items()}
    return {
        "worker_hosts": workers,
        "seconds": round(seconds, 1),
        "blocks_per_second": round(blocks / seconds, 1),
        "blocks_stored": stored,
        "transactions_stored": txs,
        "usage": usage,
        "busiest": max(usage, key=lambda part: usage[part]["cpu_seconds"]),
        "cpu_seconds_total": round(sum(u["cpu_seconds"] for u in usage.values()), 1),
        # The machine is shared: other work's load beside this run's, at its end.
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def shape(runs: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    """CPU milliseconds per block of each part (workers summed), and what bounds the run: the
    machine when our parts plus everything else running outnumber its cores."""
    per_block = {}
    for run in runs:
        blocks = run["blocks_stored"]
        workers = sum(u["cpu_seconds"] for p, u in run["usage"].items() if p.startswith("worker"))
        parts = {p: u["cpu_seconds"] for p, u in run["usage"].items() if not p.startswith("worker")}
        per_block[str(run["worker_hosts"])] = {
            part: round(seconds * 1000 / blocks, 2)
            for part, seconds in {"workers": workers, **parts}.items()
        }
    ours = [run["cpu_seconds_total"] / run["seconds"] for run in runs]
    loads = [run["load_average_at_end"][0] for run in runs]
    order = sorted(per_block[str(runs[-1]["worker_hosts"])].items(), key=lambda kv: -kv[1])
    bound = (
        f"the machine's {cores} cores (1-minute load {min(loads)}-{max(loads)} with other work"
        f" beside ours; our parts used {min(ours):.2f}-{max(ours):.2f} cores)"
        if min(loads) >= cores
        else f"our parts ({min(ours):.2f}-{max(ours):.2f} of {cores} cores)"
    )
    return {
        "cpu_ms_per_block": per_block,
        "our_cores_used": [round(x, 2) for x in ours],
        "saturates": (
            f"{bound}; CPU per block, most first: "
            + ", ".join(f"{part} {ms} ms" for part, ms in order)
        ),
    }


@contextlib.contextmanager
def _timed(label: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    print(f"{label}: {time.monotonic() - began:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/cluster.py needs root: hosts are network namespaces")
    command = "make bench-cluster"
    if args.blocks != 20_000 or args.workers != [1, 2, 3]:
        command = (
            f"bench/cluster.py --blocks {args.blocks} --workers {' '.join(map(str, args.workers))}"
        )
    result = provenance(command)
    work = scratch_directory("tindexer-bench-cluster-")
    runs = []
    for workers in args.workers:
        with _timed(f"{workers} worker host(s)"):
            run = asyncio.run(one_run(workers, args.blocks, work))
        print(run, flush=True)
        runs.append(run)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result |= {
        "blocks": args.blocks,
        "profile": PROFILE,
        "blocks_per_workflow": BLOCKS_PER_WORKFLOW,
        "slots_per_worker": SLOTS_PER_WORKER,
        "runs": runs,
        "cores": os.cpu_count(),
        "shape": shape(runs, os.cpu_count() or 1),
        "note": (
            "Hosts are network namespaces on one machine: every host shares the same cores, so"
            " more worker hosts add no CPU. `cores` is a part's CPU seconds over the backfill's"
            " wall time; `busiest` the part with the most CPU seconds. PostgreSQL's peak RSS sums"
            " its processes, so shared buffers count once per backend."
        ),
    }
    print(f"wrote {write_result('cluster', result)}")


if __name__ == "__main__":
    main()
