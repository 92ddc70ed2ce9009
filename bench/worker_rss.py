"""Peak RSS of one worker while every range slot is busy: `tindexer loadtest` watched from outside.

Starts `python -m indexer.cli loadtest` (from the source tree given by --tree, e.g. main for the
"before" figure) with a backlog of at least 32 ranges, finds its worker process, and samples the
worker's RSS (and, where the worker exports them, its bytes in flight) every 0.5 s for at most
--seconds, or until the worker passes --rss-cap (then it is stopped: the figure is a lower
bound). The loadtest is then interrupted (it stops its own services). Prints one JSON object.

    python bench/worker_rss.py --tree . --blocks 64000 --profile mainnet --seconds 150

With --compare-profile, the same is measured on a second profile right after (issue 14: the
mainnet peak within 1.3x of the 3-transaction one) and both go to --output with their ratio:

    python bench/worker_rss.py --compare-profile default --output bench/results/worker_rss.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.request

import psutil

GiB = 1024**3


def worker_of(root: psutil.Process) -> psutil.Process | None:
    for child in root.children(recursive=True):
        try:
            if "worker" in child.cmdline() and "indexer.cli" in child.cmdline():
                return child
        except psutil.Error:
            continue
    return None


def scrape(port: int, names: tuple[str, ...]) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found = {}
    for name in names:  # summed over label sets
        values = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
        if values:
            found[name] = sum(float(value) for value in values)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", default=".")
    parser.add_argument("--blocks", type=int, default=64_000)
    parser.add_argument("--profile", default="mainnet")
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--rss-cap", type=float, default=8 * GiB)
    parser.add_argument("--worker-option", action="append", default=[])
    parser.add_argument("--compare-profile", help="measure this profile too, after --profile")
    parser.add_argument("--output", help="write the JSON here instead of printing it")
    args = parser.parse_args()
    result = measure(args, args.profile)
    if args.compare_profile:
        other = measure(args, args.compare_profile)
        result = {
            "what": "Peak RSS of one worker at default settings with every range slot offered"
            f" ({args.blocks:,}-block backlog, ranges of 2,000), on two block profiles.",
            "command": "python " + " ".join(sys.argv),
            args.profile: result,
            args.compare_profile: other,
            "peak_ratio": round(
                result["worker_peak_rss_bytes"] / other["worker_peak_rss_bytes"], 3
            ),
        }
    text = json.dumps(result, indent=1)
    if args.output:
        with open(args.output, "w") as file:
            file.write(text + "\n")
    print(text)


def measure(args: argparse.Namespace, profile: str) -> dict[str, object]:
    """Run one loadtest of `profile` and watch its worker."""
    tree = os.path.abspath(args.tree)
    command = [
        sys.executable, "-m", "indexer.cli", "loadtest",
        "--blocks", str(args.blocks), "--profile", profile,
        *(f"--worker-option={option}" for option in args.worker_option),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": tree}
    commit = subprocess.run(
        ["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    output = open(f"/tmp/worker_rss-{commit}-{os.getpid()}.log", "wb")  # noqa: SIM115
    loadtest = subprocess.Popen(
        command, cwd=tree, env=env, stdout=output, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    root = psutil.Process(loadtest.pid)
    started = time.monotonic()
    peak_rss, peak_in_flight, capped, samples = 0, 0.0, False, []
    worker = None
    port = None
    names = (
        "tindexer_worker_in_flight_bytes",
        "tindexer_blocks_indexed_total",
        "tindexer_activity_timeouts_total",
    )
    last_scrape: dict[str, float] = {}
    while time.monotonic() - started < args.seconds and loadtest.poll() is None:
        worker = worker or worker_of(root)
        if worker is not None:
            if port is None:
                cmdline = worker.cmdline()
                port = int(cmdline[cmdline.index("--metrics-port") + 1])
            try:
                rss = worker.memory_info().rss
            except psutil.Error:
                rss = 0
            peak_rss = max(peak_rss, rss)
            last_scrape = scrape(port, names) or last_scrape
            in_flight = last_scrape.get(names[0], 0.0)
            peak_in_flight = max(peak_in_flight, in_flight)
            samples.append((round(time.monotonic() - started, 1), rss, in_flight))
            if rss > args.rss_cap:
                capped = True
                break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    loadtest.send_signal(signal.SIGINT)  # the loadtest stops its services on the way out
    try:
        loadtest.wait(90)
    except subprocess.TimeoutExpired:
        os.killpg(loadtest.pid, signal.SIGKILL)
        loadtest.wait()
    return {
        "command": " ".join(command),
        "tree_commit": commit,
        "machine": {
            "nproc": os.cpu_count(),
            "ram_bytes": psutil.virtual_memory().total,
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "watched_seconds": round(elapsed, 1),
        "worker_peak_rss_bytes": peak_rss,
        "worker_peak_rss_mib": round(peak_rss / 2**20, 1),
        "stopped_at_rss_cap": capped,
        "peak_in_flight_bytes": peak_in_flight,
        "blocks_indexed_when_stopped": last_scrape.get(names[1]),
        "activity_timeouts_when_stopped": last_scrape.get(names[2]),
        "rss_series": samples[:: max(1, len(samples) // 60)],
    }


if __name__ == "__main__":
    main()
