"""`make bench-chains`: many chains under one `tindexer up`, each followed at its head, measured.

For each scenario (chains × block time) one simulated chain mines `--backlog` blocks and then one
more every block time; N chain configs (c000, c001, …) all index it under one `tindexer up`
(its embedded Temporal dev server; PostgreSQL from the pgserver wheel, started here so this
process can read it). Phases, each measured apart:

* backfill: until every chain has stored the backlog;
* after the backfill (`--window` seconds): the chains catch up on what arrived meanwhile;
* settled (`--window` seconds): the live edge.

Live lag is the simulated chain's head minus a chain's newest stored block, sampled every
`SAMPLE_SECONDS` for every chain from PostgreSQL (one query). Freshness is read from the
indexer's own `tindexer_block_freshness_seconds` histogram over the settled window (null where
the indexer has none). Workflow starts per new block divide the increase of
`tindexer_workflows_started_total{workflow="IndexRange"}` by the blocks that appeared, times
the chains (and head-scan activities, `tindexer_head_scan_activities_total`, likewise: the other
Temporal action per block). `/metrics` is scraped `SCRAPES` times in the settled window
(p50/max, series).
CPU is each process's CPU seconds over the settled window, as cores: the indexer (`tindexer
up`), Temporal, PostgreSQL, the chain.

    .venv/bin/python bench/chains.py                      # or `make bench-chains`
    .venv/bin/python bench/chains.py --scenario 10x1.0    # one scenario
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import asyncpg
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.common import ROOT, provenance, scratch_directory, write_result
from bench.profiling import hot_frames, record
from indexer import services
from indexer.embedded import free_port, free_ports_from
from indexer.loadtest import sum_samples

SCENARIOS = ["1x1.0", "10x1.0", "50x1.0", "100x1.0", "10x0.25"]
SAMPLE_SECONDS = 0.5
SCRAPES = 40
STOP_SECONDS = 60.0
NEWEST_STORED = """
SELECT c.name, (SELECT max(r.end_block) FROM indexed_ranges r WHERE r.chain_id = c.id)
FROM chains c
"""


@dataclass(frozen=True)
class Scenario:
    chains: int
    block_time: float

    @classmethod
    def parse(cls, text: str) -> Scenario:
        chains, block_time = text.split("x")
        return cls(int(chains), float(block_time))

    @property
    def name(self) -> str:
        return f"{self.chains} chains x {self.block_time:g} s"


def poll_interval(scenario: Scenario, polls_per_block: int) -> float:
    """head_poll_interval_seconds: the block time (at most 1 s) over `polls_per_block`."""
    return min(1.0, scenario.block_time) / polls_per_block


def config_toml(
    scenario: Scenario,
    rpc_url: str,
    database_url: str,
    ports: dict[str, int],
    worker_ports: list[int],
    polls_per_block: int = 1,
) -> str:
    """`tindexer up`'s config: N chains on one RPC, polling the head once a block time, and
    its worker processes on `worker_ports` (consecutive)."""
    poll = poll_interval(scenario, polls_per_block)
    lines = [
        f'database_url = "{database_url}"',
        f"metrics_port = {ports['metrics']}",
        f"api_port = {ports['api']}",
        f"temporal_metrics_port = {ports['temporal_metrics']}",
        f"worker_processes = {len(worker_ports)}",
        *([f"worker_metrics_port_base = {worker_ports[0]}"] if worker_ports else []),
        "",
    ]
    for index in range(scenario.chains):
        lines += [
            "[[chain]]",
            f'name = "c{index:03d}"',
            f'rpc_url = "{rpc_url}"',
            f"head_poll_interval_seconds = {poll}",
            "",
        ]
    return "\n".join(lines)


async def head_of(session: aiohttp.ClientSession, rpc_url: str) -> int:
    call = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    async with session.post(rpc_url, json=call) as response:
        return int((await response.json())["result"], 16)


async def newest_stored(pool: asyncpg.Pool) -> dict[str, int]:
    """Each chain's newest stored block (-1 before its first)."""
    try:
        rows = await pool.fetch(NEWEST_STORED)
    except asyncpg.UndefinedTableError:  # `up` has not migrated yet
        return {}
    return {row[0]: -1 if row[1] is None else row[1] for row in rows}


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def freshness(before: list[str], after: list[str], name: str) -> dict[str, float | None]:
    """p50/p99 (Prometheus' interpolation) and count of `name` between two scrapes of every
    page, all chains."""
    buckets: dict[float, float] = {}
    for scrapes, sign in ((after, 1.0), (before, -1.0)):
        for labels, value in (pair for text in scrapes for pair in samples(text, f"{name}_bucket")):
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sign * value
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return {"p50": None, "p99": None, "count": 0}

    def quantile(q: float) -> float:
        lower, below = 0.0, 0.0
        for bound in sorted(buckets):
            if buckets[bound] >= q * total:
                if bound == float("inf"):
                    return lower
                share = (q * total - below) / max(buckets[bound] - below, 1e-9)
                return lower + (bound - lower) * share
            lower, below = bound, buckets[bound]
        return lower

    return {"p50": round(quantile(0.5), 3), "p99": round(quantile(0.99), 3), "count": int(total)}


async def scrape_all(http: aiohttp.ClientSession, urls: list[str]) -> list[str]:
    texts = []
    for url in urls:
        async with http.get(url) as response:
            texts.append(await response.text())
    return texts


def lag_figures(lags: list[int]) -> dict[str, float | None]:
    if not lags:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(lags)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max": ordered[-1],
    }


def processes(
    root: psutil.Process, chain: psutil.Process, marker: str
) -> dict[str, list[psutil.Process]]:
    """The scenario's processes by role: `up` and its children, the chain, and whatever runs
    in `marker` (the PostgreSQL started here)."""
    found = {root.pid: root, chain.pid: chain}
    with contextlib.suppress(psutil.NoSuchProcess):
        found.update({child.pid: child for child in root.children(recursive=True)})
    for process in psutil.process_iter(["cmdline"]):
        if marker in " ".join(process.info["cmdline"] or []):  # PostgreSQL's postmaster
            found[process.pid] = process
            with contextlib.suppress(psutil.NoSuchProcess):  # its backends
                found.update({child.pid: child for child in process.children(recursive=True)})
    roles: dict[str, list[psutil.Process]] = {}
    for process in found.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            command = " ".join(process.cmdline())
            role = (
                "temporal"
                if "temporal" in process.name()
                else "postgresql"
                if "postgres" in process.name()
                else "chain"
                if "sim-chain" in command
                else "indexer worker processes"
                if " worker " in command
                else "indexer"
            )
            roles.setdefault(role, []).append(process)
    return roles


def cpu_seconds(roles: dict[str, list[psutil.Process]]) -> dict[str, float]:
    out = {}
    for role, members in roles.items():
        total = 0.0
        for process in members:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        out[role] = total
    return out


@contextlib.contextmanager
def tindexer_up(config: Path, work: Path, ports: dict[str, int]) -> Iterator[subprocess.Popen]:
    """`tindexer up` in its own process group; stopped (SIGTERM, then SIGKILL) on the way out."""
    command = [
        str(ROOT / ".venv" / "bin" / "tindexer"),
        "up",
        "--config",
        str(config),
        "--data-dir",
        str(work / "up"),
        "--temporal-port",
        str(ports["temporal"]),
        "--temporal-ui-port",
        str(ports["temporal_ui"]),
    ]
    with open(work / "up.out", "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def measure(scenario: Scenario, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sim_port = free_port()
    ports = {
        name: free_port()
        for name in ("metrics", "api", "temporal", "temporal_ui", "temporal_metrics")
    }
    rpc_url = f"http://{services.HOST}:{sim_port}"
    base = free_ports_from(args.worker_processes) if args.worker_processes else 0
    worker_ports = [base + n for n in range(args.worker_processes)]
    metrics_urls = [
        f"http://{services.HOST}:{port}/metrics" for port in [ports["metrics"], *worker_ports]
    ]
    with (
        services.sim_chain(
            sim_port, work / "sim-chain.log", backlog=args.backlog, block_time=scenario.block_time
        ) as chain,
        services.database(None, work / "postgres") as database_url,
    ):
        config = work / "config.toml"
        config.write_text(
            config_toml(scenario, rpc_url, database_url, ports, worker_ports, args.polls_per_block)
        )
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        async with aiohttp.ClientSession() as http:
            try:
                with tindexer_up(config, work, ports) as up:
                    return await phases(
                        scenario, args, up, chain.pid, pool, http, rpc_url, metrics_urls, work
                    )
            finally:
                await pool.close()


async def phases(
    scenario: Scenario,
    args: argparse.Namespace,
    up: subprocess.Popen,
    chain_pid: int,
    pool: asyncpg.Pool,
    http: aiohttp.ClientSession,
    rpc_url: str,
    metrics_urls: list[str],
    work: Path,
) -> dict[str, Any]:
    began = time.monotonic()
    backlog_head = await head_of(http, rpc_url)
    while True:  # the backfill
        if up.poll() is not None:
            raise RuntimeError(f"tindexer up exited ({up.returncode}): see {work / 'up.out'}")
        stored = await newest_stored(pool)
        if len(stored) == scenario.chains and min(stored.values()) >= backlog_head:
            break
        if time.monotonic() - began > args.backfill_timeout:
            raise TimeoutError(f"{scenario.name}: backlog not stored in {args.backfill_timeout} s")
        await asyncio.sleep(SAMPLE_SECONDS)
    backfill_seconds = time.monotonic() - began
    print(f"  {scenario.name}: backfill of {backlog_head + 1:,} blocks in {backfill_seconds:.1f} s")

    async def lags_for(seconds: float) -> list[int]:
        lags: list[int] = []
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            head = await head_of(http, rpc_url)
            lags += [max(0, head - newest) for newest in (await newest_stored(pool)).values()]
            await asyncio.sleep(SAMPLE_SECONDS)
        return lags

    after_backfill = await lags_for(args.window)
    roles = processes(psutil.Process(up.pid), psutil.Process(chain_pid), str(work))
    cpu_before = cpu_seconds(roles)
    head_before = await head_of(http, rpc_url)
    scrape_before = await scrape_all(http, metrics_urls)
    settled_began = time.monotonic()
    # py-spy on each indexer process over the settled window, if asked: (file, recorder) by role
    profiles: dict[str, list[tuple[Path, subprocess.Popen]]] = {}
    for role in ("indexer", "indexer worker processes") if args.profile else ():
        for process in roles.get(role, []):
            path = work / f"pyspy-{process.pid}.txt"
            profiles.setdefault(role, []).append(
                (path, record(process.pid, path, 100, args.window))
            )

    async def scrape_times() -> list[float]:
        times = []
        for _ in range(SCRAPES):
            for url in metrics_urls:
                started = time.perf_counter()
                async with http.get(url) as response:
                    await response.read()
                times.append(time.perf_counter() - started)
            await asyncio.sleep(args.window / SCRAPES)
        return times

    settled, scrapes = await asyncio.gather(lags_for(args.window), scrape_times())
    scrape_after = await scrape_all(http, metrics_urls)
    for spies in profiles.values():
        for _, spy in spies:
            spy.wait()
    seconds = time.monotonic() - settled_began
    head_after = await head_of(http, rpc_url)
    cpu_after = cpu_seconds(roles)
    new_blocks = (head_after - head_before) * scenario.chains
    starts = sum_samples(
        scrape_after, "tindexer_workflows_started_total", workflow="IndexRange"
    ) - sum_samples(scrape_before, "tindexer_workflows_started_total", workflow="IndexRange")
    scans = sum_samples(scrape_after, "tindexer_head_scan_activities_total") - sum_samples(
        scrape_before, "tindexer_head_scan_activities_total"
    )
    edge_blocks = sum_samples(scrape_after, "tindexer_live_edge_blocks_total") - sum_samples(
        scrape_before, "tindexer_live_edge_blocks_total"
    )
    series = [
        sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        for text in scrape_after
    ]
    result = {
        "scenario": scenario.name,
        "chains": scenario.chains,
        "block_time_seconds": scenario.block_time,
        "worker_processes": args.worker_processes,
        "head_poll_interval_seconds": poll_interval(scenario, args.polls_per_block),
        "backlog_blocks": backlog_head + 1,
        "backfill_seconds": round(backfill_seconds, 1),
        "live_lag_blocks_after_backfill": lag_figures(after_backfill),
        "live_lag_blocks_settled": lag_figures(settled),
        "freshness_seconds_settled": freshness(
            scrape_before, scrape_after, "tindexer_block_freshness_seconds"
        ),
        "metrics_scrape_seconds": {
            "p50": round(statistics.median(scrapes), 4),
            "max": round(max(scrapes), 4),
        },
        "metrics_series": max(series),  # of the largest page (up's, or one worker's)
        "metrics_pages": len(series),
        "new_blocks_settled": new_blocks,
        "index_range_starts_settled": int(starts),
        "workflow_starts_per_new_block": round(starts / new_blocks, 3) if new_blocks else None,
        "head_scan_activities_per_new_block": round(scans / new_blocks, 3) if new_blocks else None,
        "blocks_indexed_by_live_edge_settled": int(edge_blocks),
        "cpu_cores_settled": {
            role: round((cpu_after.get(role, 0.0) - cpu_before.get(role, 0.0)) / seconds, 3)
            for role in sorted(cpu_after)
        },
    }
    if args.profile:
        result["profile_settled"] = {
            role: hot_frames(*(path for path, _ in spies))
            for role, spies in sorted(profiles.items())
        }
    print(f"  {json.dumps(result)}", flush=True)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        action="append",
        help=f"CHAINSxBLOCK_TIME, repeatable (default: {' '.join(SCENARIOS)}).",
    )
    parser.add_argument("--backlog", type=int, default=2_000, help="Blocks mined at start.")
    parser.add_argument("--window", type=float, default=60.0, help="Seconds per measured phase.")
    parser.add_argument("--backfill-timeout", type=float, default=900.0)
    parser.add_argument("--name", default="chains", help="bench/results/NAME.json")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the indexer's processes over the settled window (py-spy beside this"
        " Python, $PY_SPY or on PATH): where their time goes",
    )
    parser.add_argument(
        "--polls-per-block",
        type=int,
        default=1,
        help="head_poll_interval_seconds = block time / this (at most 1 s / this).",
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="`tindexer up`'s worker_processes (0: its worker runs in its own process).",
    )
    args = parser.parse_args()
    chosen = args.scenario or SCENARIOS
    runs = []
    for text in chosen:
        scenario = Scenario.parse(text)
        work = scratch_directory(f"chains-{scenario.chains}x{scenario.block_time:g}")
        print(f"{scenario.name} (work in {work})", flush=True)
        runs.append(await measure(scenario, args, work))
    flags = "" if args.scenario is None else "".join(f" --scenario {s}" for s in chosen)
    flags += "" if args.backlog == 2_000 else f" --backlog {args.backlog}"
    flags += "" if args.window == 60.0 else f" --window {args.window:g}"
    flags += f" --worker-processes {args.worker_processes}" if args.worker_processes else ""
    flags += f" --polls-per-block {args.polls_per_block}" if args.polls_per_block != 1 else ""
    flags += " --profile" if args.profile else ""
    flags += f" --name {args.name}" if args.name != "chains" else ""
    result = {
        **provenance(f"make bench-chains (.venv/bin/python bench/chains.py{flags})"),
        "runs": runs,
        "note": os.environ.get("BENCH_NOTE", ""),
    }
    print(f"wrote {write_result(args.name, result)}")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(main())
