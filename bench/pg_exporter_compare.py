"""Our PostgreSQL health endpoint side by side with Debian's prometheus-postgres-exporter.

Both watch the same PostgreSQL while `pgbench` loads it, in one run: each /metrics endpoint is
scraped `--scrapes` times, alternating which goes first, over keep-alive connections. Ours runs
as its own process (`PostgresHealthCollector` + `PoolCollector` + exporter/server.py, as an
indexer process would) and serves values cached by the background refresh; theirs queries the
server on every scrape. The series of each side's PostgreSQL families are counted from the last
scrape, and each health question their default output answers is looked up in both outputs.
Every figure printed or written is measured in this run.

    python bench/pg_exporter_compare.py     # writes bench/results/pg_health.{json,md}

Needs `apt-get install prometheus-postgres-exporter postgresql-contrib` (pgbench) and a
PostgreSQL at --server (default 127.0.0.1:5432, trust auth); it (re)initialises pgbench in a
dedicated database, --database.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUR_COLLECTORS = {"postgres", "pg_pool"}
SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

# Each health question their default output answers: (question, their families, ours).
HEALTH_QUESTIONS = [
    ("up", ["pg_up"], ["tindexer_pg_up"]),
    (
        "connections vs max",
        ["pg_stat_activity_count", "pg_settings_max_connections"],
        ["tindexer_pg_connections", "tindexer_pg_max_connections"],
    ),
    (
        "locks",
        ["pg_locks_count"],
        ["tindexer_pg_locks_waiting", "tindexer_pg_lock_wait_oldest_seconds"],
    ),
    ("deadlocks", ["pg_stat_database_deadlocks"], ["tindexer_pg_deadlocks_total"]),
    (
        "cache hits",
        ["pg_stat_database_blks_hit", "pg_stat_database_blks_read"],
        ["tindexer_pg_cache_hit_ratio"],
    ),
    ("size", ["pg_database_size_bytes"], ["tindexer_pg_database_size_bytes"]),
    (
        "longest transaction",
        ["pg_stat_activity_max_tx_duration"],
        ["tindexer_pg_longest_transaction_seconds"],
    ),
]

Samples = dict[str, list[tuple[dict[str, str], float]]]


# --- our exporter, as a child process -----------------------------------------------------------


async def serve(dsn: str, port: int, interval: float) -> None:
    """Run our health collectors and /metrics until SIGTERM."""
    import asyncpg
    from prometheus_client import CollectorRegistry

    from exporter.collectors.base import running
    from exporter.collectors.pool import PoolCollector
    from exporter.collectors.postgres import PostgresHealthCollector
    from exporter.metrics import Metrics
    from exporter.server import start_metrics_server

    metrics = Metrics(CollectorRegistry())
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)  # as an indexer holds one
    health = PostgresHealthCollector(metrics, dsn, interval=interval)
    runner = await start_metrics_server(metrics.registry, "127.0.0.1", port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with running(health, PoolCollector(metrics, pool)):
        await stop.wait()
    await runner.cleanup()
    await health.close()
    await pool.close()


# --- helpers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def psql(args: argparse.Namespace, database: str, sql: str) -> str:
    command = ["psql", "-h", args.host, "-p", str(args.port), "-U", args.user, "-d", database]
    return subprocess.run(
        [*command, "-Atc", sql], check=True, capture_output=True, text=True
    ).stdout


def scrape(conn: http.client.HTTPConnection) -> tuple[float, str]:
    """One GET /metrics on a keep-alive connection: seconds to the whole body, and the body."""
    started = time.perf_counter()
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status} from {conn.host}:{conn.port}")
    return elapsed, body.decode()


def parse(body: str) -> Samples:
    """Each exposed series by the name it is exposed under (prometheus_client's parser would
    rename a counter's samples to `_total`, which the Go exporter does not use)."""
    out: Samples = {}
    for line in body.splitlines():
        match = SERIES.match(line)
        if match:
            name, labels, value = match.groups()
            pairs = {k: v.replace('\\"', '"') for k, v in LABEL.findall(labels or "")}
            out.setdefault(name, []).append((pairs, float(value)))
    return out


def wait_until_up(port: int, up_metric: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            _, body = scrape(http.client.HTTPConnection("127.0.0.1", port, timeout=5))
            if any(value == 1 for _, value in parse(body).get(up_metric, [])):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{up_metric} never reached 1 on port {port}")


def our_series(samples: Samples) -> int:
    """Series of our PostgreSQL families: tindexer_pg_* and the PostgreSQL collectors' health."""
    count = 0
    for name, rows in samples.items():
        if name.startswith("tindexer_pg_"):
            count += len(rows)
        elif name.startswith("tindexer_collector_"):
            count += sum(1 for labels, _ in rows if labels.get("collector") in OUR_COLLECTORS)
    return count


def our_last_refresh(samples: Samples) -> tuple[float, float]:
    """When our PostgreSQL collector last succeeded, and how long its last refresh took."""
    labels = {"collector": "postgres"}
    finished = total(samples, "tindexer_collector_last_success_timestamp_seconds", **labels)
    return finished, total(samples, "tindexer_collector_duration_seconds", **labels)


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def xact_commits(args: argparse.Namespace) -> int:
    sql = f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{args.database}'"
    return int(psql(args, args.database, sql))


# --- the health questions -----------------------------------------------------------------------


def total(samples: Samples, name: str, **match: str) -> float:
    rows = samples.get(name, [])
    return sum(v for labels, v in rows if all(labels.get(k) == m for k, m in match.items()))


def their_answer(question: str, s: Samples, database: str) -> str:
    db = {"datname": database}
    if question == "up":
        return f"{total(s, 'pg_up'):g}"
    if question == "connections vs max":
        return (
            f"{total(s, 'pg_stat_activity_count'):g} / {total(s, 'pg_settings_max_connections'):g}"
        )
    if question == "locks":
        return f"{total(s, 'pg_locks_count'):g} held or waiting (not told apart)"
    if question == "deadlocks":
        return f"{total(s, 'pg_stat_database_deadlocks', **db):g}"
    if question == "cache hits":
        hit = total(s, "pg_stat_database_blks_hit", **db)
        read = total(s, "pg_stat_database_blks_read", **db)
        return f"{hit / (hit + read):.4f} (computed from 2 counters)" if hit + read else "n/a"
    if question == "size":
        return f"{total(s, 'pg_database_size_bytes', **db):.0f} bytes"
    rows = s.get("pg_stat_activity_max_tx_duration", [])
    return f"{max((v for _, v in rows), default=0):.3f} s"


def our_answer(question: str, s: Samples) -> str:
    if question == "up":
        return f"{total(s, 'tindexer_pg_up'):g}"
    if question == "connections vs max":
        ratio = total(s, "tindexer_pg_connection_utilization_ratio")
        used, limit = total(s, "tindexer_pg_connections"), total(s, "tindexer_pg_max_connections")
        return f"{used:g} / {limit:g} (ratio {ratio:.2f})"
    if question == "locks":
        waiting = total(s, "tindexer_pg_locks_waiting")
        return (
            f"{waiting:g} waiting, oldest {total(s, 'tindexer_pg_lock_wait_oldest_seconds'):.3f} s"
        )
    if question == "deadlocks":
        return f"{total(s, 'tindexer_pg_deadlocks_total'):g}"
    if question == "cache hits":
        return f"{total(s, 'tindexer_pg_cache_hit_ratio'):.4f}"
    if question == "size":
        return f"{total(s, 'tindexer_pg_database_size_bytes'):.0f} bytes"
    return f"{total(s, 'tindexer_pg_longest_transaction_seconds'):.3f} s"


def health_table(ours: Samples, theirs: Samples, database: str) -> list[dict[str, Any]]:
    rows = []
    for question, their_names, our_names in HEALTH_QUESTIONS:
        rows.append(
            {
                "question": question,
                "theirs": their_names,
                "theirs_present": all(theirs.get(n) for n in their_names),
                "theirs_value": their_answer(question, theirs, database),
                "ours": our_names,
                "ours_present": all(ours.get(n) for n in our_names),
                "ours_value": our_answer(question, ours),
            }
        )
    return rows


# --- the run ------------------------------------------------------------------------------------


class Children:
    """Child processes started by this run, each stopped by its own pid at the end."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def prepare_database(args: argparse.Namespace) -> None:
    """Create the dedicated database if needed and (re)initialise pgbench's tables in it."""
    exists = psql(args, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'")
    if not exists.strip():
        psql(args, "postgres", f'CREATE DATABASE "{args.database}"')
    connection = ["-h", args.host, "-p", str(args.port), "-U", args.user]
    init = ["pgbench", *connection, "-i", "-q", "-s", str(args.scale), args.database]
    subprocess.run(init, check=True, capture_output=True)


def alternate(
    ours: http.client.HTTPConnection, theirs: http.client.HTTPConnection, times: int
) -> Iterator[tuple[str, float, str]]:
    """Scrape both `times` times, swapping which goes first each round."""
    for i in range(times):
        order = [("ours", ours), ("theirs", theirs)]
        for side, conn in order if i % 2 == 0 else reversed(order):
            elapsed, body = scrape(conn)
            yield side, elapsed, body


def run(args: argparse.Namespace) -> dict[str, Any]:
    exporter = shutil.which(args.exporter)
    if exporter is None:
        sys.exit(f"{args.exporter} not found: apt-get install -y prometheus-postgres-exporter")
    dsn = f"postgresql://{args.user}@{args.host}:{args.port}/{args.database}?sslmode=disable"
    prepare_database(args)
    children = Children()
    try:
        connection = ["-h", args.host, "-p", str(args.port), "-U", args.user]
        load = ["pgbench", *connection, "-n", "-c", str(args.clients), "-j", str(args.jobs)]
        children.start([*load, "-T", "3600", args.database])
        our_port, their_port = free_port(), free_port()
        serve_args = ["--serve", str(our_port), "--dsn", dsn, "--interval", str(args.interval)]
        ours_process = children.start([sys.executable, __file__, *serve_args])
        theirs_process = children.start(
            [exporter, f"--web.listen-address=127.0.0.1:{their_port}"],
            env={"DATA_SOURCE_NAME": dsn},
        )
        wait_until_up(our_port, "tindexer_pg_up", ours_process)
        wait_until_up(their_port, "pg_up", theirs_process)
        time.sleep(args.warmup)  # pgbench ramps up; both exporters run a few cycles

        ours = http.client.HTTPConnection("127.0.0.1", our_port, timeout=30)
        theirs = http.client.HTTPConnection("127.0.0.1", their_port, timeout=30)
        for _ in alternate(ours, theirs, 5):  # open the connections, warm both up; not counted
            pass
        latencies: dict[str, list[float]] = {"ours": [], "theirs": []}
        bodies: dict[str, str] = {}
        our_refresh: dict[float, float] = {}
        commits_before, started = xact_commits(args), time.monotonic()
        for side, elapsed, body in alternate(ours, theirs, args.scrapes):
            latencies[side].append(elapsed)
            bodies[side] = body
            if side == "ours":  # each refresh once, keyed by when it succeeded
                finished, took = our_last_refresh(parse(body))
                our_refresh[finished] = took
            time.sleep(args.pause)
        load_tps = (xact_commits(args) - commits_before) / (time.monotonic() - started)
        load_average = os.getloadavg()[0]
        if children.processes[0].poll() is not None:
            raise RuntimeError("pgbench stopped before the scrapes ended: the load was not on")
    finally:
        children.stop_all()

    our_samples, their_samples = parse(bodies["ours"]), parse(bodies["theirs"])
    their_pg = sum(len(rows) for name, rows in their_samples.items() if name.startswith("pg_"))
    figures = {
        side: {
            "median_ms": round(statistics.median(values) * 1000, 3),
            "p90_ms": round(percentile(values, 90) * 1000, 3),
            "p99_ms": round(percentile(values, 99) * 1000, 3),
            "max_ms": round(max(values) * 1000, 3),
            "scrapes": len(values),
        }
        for side, values in latencies.items()
    }
    series = {
        "ours_postgres_families": our_series(our_samples),
        "ours_whole_endpoint": sum(len(rows) for rows in our_samples.values()),
        "theirs_pg_families": their_pg,
        "theirs_whole_endpoint": sum(len(rows) for rows in their_samples.values()),
    }
    speedup_median = figures["theirs"]["median_ms"] / figures["ours"]["median_ms"]
    series_ratio = series["ours_postgres_families"] / series["theirs_pg_families"]
    table = health_table(our_samples, their_samples, args.database)
    return {
        "benchmark": "PostgreSQL health: tindexer vs prometheus-postgres-exporter under pgbench",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "machine": machine(),
        "versions": versions(args, exporter),
        "load": {
            "pgbench": f"-c {args.clients} -j {args.jobs} -s {args.scale} (tpcb-like)",
            "commits_per_second_during_scrapes": round(load_tps, 1),
            "load_average_1m": round(load_average, 2),
        },
        "scrape_latency": figures,
        "our_refresh": {
            "refreshes_seen": len(our_refresh),
            "median_ms": round(statistics.median(our_refresh.values()) * 1000, 3),
        },
        "series": series,
        "ratios": {
            "speedup_median": round(speedup_median, 2),
            "speedup_p99": round(figures["theirs"]["p99_ms"] / figures["ours"]["p99_ms"], 2),
            "series_ours_over_their_pg": round(series_ratio, 4),
            "series_ours_over_their_endpoint": round(
                series["ours_postgres_families"] / series["theirs_whole_endpoint"], 4
            ),
        },
        "targets": {
            "speedup_at_least_5x": speedup_median >= 5,
            "series_at_most_a_tenth": series_ratio <= 0.1,
            "every_question_answered": all(row["ours_present"] for row in table),
        },
        "health_questions": table,
    }


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": models[0] if models else platform.processor(),
        "python": platform.python_version(),
    }


def versions(args: argparse.Namespace, exporter: str) -> dict[str, str]:
    their = subprocess.run([exporter, "--version"], capture_output=True, text=True)
    return {
        "postgresql": psql(args, args.database, "SHOW server_version").strip(),
        "prometheus_postgres_exporter": (their.stdout or their.stderr).splitlines()[0],
        "pgbench": subprocess.run(
            ["pgbench", "--version"], capture_output=True, text=True
        ).stdout.strip(),
    }


# --- report -------------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    lat, series, ratios = result["scrape_latency"], result["series"], result["ratios"]
    lines = [
        "# PostgreSQL health: tindexer vs prometheus-postgres-exporter",
        "",
        f"{result['date']} on {result['machine']['cpus']} × {result['machine']['cpu_model']};"
        f" PostgreSQL {result['versions']['postgresql']};"
        f" {result['versions']['prometheus_postgres_exporter']}.",
        f"Load: pgbench {result['load']['pgbench']},"
        f" {result['load']['commits_per_second_during_scrapes']} commits/s during the scrapes"
        f" (1-minute load average {result['load']['load_average_1m']}).",
        f"Command: `{result['command']}`",
        "",
        "| | ours | theirs | ratio |",
        "|---|---:|---:|---:|",
        f"| scrape median (ms) | {lat['ours']['median_ms']} | {lat['theirs']['median_ms']}"
        f" | {ratios['speedup_median']}× faster |",
        f"| scrape p99 (ms) | {lat['ours']['p99_ms']} | {lat['theirs']['p99_ms']}"
        f" | {ratios['speedup_p99']}× faster |",
        f"| series, PostgreSQL families | {series['ours_postgres_families']}"
        f" | {series['theirs_pg_families']} | {ratios['series_ours_over_their_pg']} |",
        f"| series, whole endpoint | {series['ours_whole_endpoint']}"
        f" | {series['theirs_whole_endpoint']} | |",
        "",
        f"Scrapes per side: {lat['ours']['scrapes']}. Our background refresh (off the scrape"
        f" path) took {result['our_refresh']['median_ms']} ms (median of"
        f" {result['our_refresh']['refreshes_seen']} refreshes seen).",
        "",
        "| question | theirs | their value | ours | our value |",
        "|---|---|---|---|---|",
    ]
    for row in result["health_questions"]:
        mark = {True: "", False: " (MISSING)"}
        lines.append(
            f"| {row['question']} | {', '.join(row['theirs'])}{mark[row['theirs_present']]}"
            f" | {row['theirs_value']} | {', '.join(row['ours'])}{mark[row['ours_present']]}"
            f" | {row['ours_value']} |"
        )
    targets = result["targets"].items()
    lines += ["", "Targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--database", default="tindexer_bench")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale factor")
    parser.add_argument("--clients", type=int, default=8, help="pgbench clients")
    parser.add_argument("--jobs", type=int, default=2, help="pgbench threads")
    parser.add_argument("--scrapes", type=int, default=100, help="scrapes of each endpoint")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between scrapes")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before")
    parser.add_argument("--interval", type=float, default=5.0, help="our refresh interval")
    parser.add_argument("--exporter", default="prometheus-postgres-exporter")
    parser.add_argument("--output", type=Path, default=REPO / "bench/results/pg_health.json")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # child: our exporter
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, str(REPO))
        asyncio.run(serve(args.dsn, args.serve, args.interval))
        return

    result = run(args)
    text = report(result)
    print(text)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(text)
    print(f"wrote {args.output} and {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
