"""Freshness of the live edge under `tindexer up`: N chains on one simulated chain.

For each configuration, `tindexer up` indexes N chains (each a 2,000-block backlog on one
simulated chain producing a block every `block_time` seconds) on embedded Temporal and
PostgreSQL; after `settle` seconds (the backfill done) /metrics is scraped twice, `window`
seconds apart, and the quantiles of tindexer_block_freshness_seconds over what the window added
are computed as Prometheus' histogram_quantile does (linear within a bucket). The simulated
chain's timestamps follow the block number, not the clock, so the age-at-commit series is not
reported here (anvil's are real: tests/integration/test_freshness.py).

    .venv/bin/python bench/freshness.py  ->  bench/results/freshness.json
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, provenance, scratch_directory, write_result
from indexer.embedded import free_port

TINDEXER = str(ROOT / ".venv" / "bin" / "tindexer")
FAMILY = "tindexer_block_freshness_seconds"
# (chains, seconds per block): the issue's single chain and its fast-L2 case.
RUNS = ((1, 1.0), (10, 0.25))
SETTLE_SECONDS = 90.0
WINDOW_SECONDS = 120.0


def config(work: Path, chains: int, block_time: float, sim_port: int, metrics_port: int) -> Path:
    lines = [
        f"api_port = {free_port()}",
        f"metrics_port = {metrics_port}",
        f'data_dir = "{work / "data"}"',
    ]
    for index in range(chains):
        lines += [
            "[[chains]]",
            f'name = "c{index}"',
            f'rpc_url = "http://127.0.0.1:{sim_port}"',
            f"block_time_seconds = {block_time}",
            f"head_poll_interval_seconds = {min(1.0, block_time)}",
        ]
    path = work / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def buckets(metrics_url: str) -> dict[float, float]:
    """The freshness histogram's cumulative buckets, summed over chains."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    found: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{FAMILY}_bucket{{"):
            bound = float(line.split('le="')[1].split('"')[0])
            found[bound] = found.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def quantile(q: float, cumulative: dict[float, float]) -> float:
    """histogram_quantile(q) of cumulative buckets (the lower bound of +Inf beyond the last)."""
    ordered = sorted(cumulative.items())
    total = ordered[-1][1] if ordered else 0.0
    if total == 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def run(chains: int, block_time: float) -> dict[str, Any]:
    work = scratch_directory(f"freshness-{chains}-")
    sim_port, metrics_port = free_port(), free_port()
    path = config(work, chains, block_time, sim_port, metrics_port)
    sim_args = f"sim-chain --port {sim_port} --backlog 2000 --block-time {block_time}"
    sim = subprocess.Popen(
        [TINDEXER, *sim_args.split()],
        stdout=(work / "sim.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    temporal, ui, temporal_metrics = (str(free_port()) for _ in range(3))
    up_args = f"up -c {path} --temporal-port {temporal} --temporal-ui-port {ui}"
    up = subprocess.Popen(
        [TINDEXER, *up_args.split(), "--temporal-metrics-port", temporal_metrics],
        stdout=(work / "up.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        time.sleep(SETTLE_SECONDS)
        first = buckets(url)
        time.sleep(WINDOW_SECONDS)
        second = buckets(url)
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        sim.terminate()
        sim.wait()
    added = {bound: count - first.get(bound, 0.0) for bound, count in second.items()}
    blocks = max(added.values(), default=0.0)
    return {
        "chains": chains,
        "block_time_seconds": block_time,
        "window_seconds": WINDOW_SECONDS,
        "blocks": int(blocks),
        "freshness_p50_seconds": round(quantile(0.5, added), 3),
        "freshness_p99_seconds": round(quantile(0.99, added), 3),
        "freshness_max_bucket_seconds": min(b for b, c in added.items() if c >= blocks),
    }


def main() -> None:
    result = provenance("python bench/freshness.py")
    result["runs"] = []
    for chains, block_time in RUNS:
        measured = run(chains, block_time)
        print(measured, flush=True)
        result["runs"].append(measured)
    print(f"wrote {write_result('freshness', result)}")


if __name__ == "__main__":
    main()
