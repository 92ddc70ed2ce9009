"""/metrics scrape time and series with 1, 10, 50 and 100 chains (issue 24, item 3).

For each chain count, in one process, as `tindexer up` serves /metrics: a fresh database on
PostgreSQL (DATABASE_URL, else 127.0.0.1:5432) with N chain configs, each with its providers on
one in-process simulated chain; every chain scanned (the real ScanHead activity) and a range of
it indexed (the real IndexRange activity) through temporalio's ActivityEnvironment, so the
RPC, head, reorg, progress and row families carry the label values a running indexer gives
them. Scheduling families, which need a Temporal server, are recorded as the scheduling
activity records them. Then `serving_metrics` (the exporter's server and its collectors, the
progress collector included, refreshing in the background) is scraped `--scrapes` times from
another thread, as text and then as OpenMetrics (what Prometheus asks for); p50/max scrape
time and the series per family (of the text page) are written to
bench/results/metrics_scrape.json under `--variant` (before/after), keeping other variants.
`--profile` adds cProfile's top functions of rendering the page at the largest chain count.

Not included: the Temporal SDK's `temporal_*` families and the task-queue gauges (no Temporal
server here); they do not grow with chains.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, exposition
from temporalio.testing import ActivityEnvironment

from bench.common import RESULTS, provenance, write_result
from exporter.metrics import Metrics
from indexer.activities.chain_cache import ChainCache
from indexer.activities.index_range import IndexRangeActivities
from indexer.activities.scan_head import ScanHeadActivities
from indexer.config import ChainConfig, ProviderConfig
from indexer.embedded import free_port
from indexer.observability import serving_metrics
from indexer.simchain.server import SimChain, SimChainConfig, build_app
from indexer.store.chains import upsert_chain
from indexer.store.db import create_pool
from indexer.worker_budget import ByteBudget
from indexer.workflows.inputs import IndexRangeInput, ScanHeadInput

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
INDEXED_BLOCKS = 20  # per chain: enough for every dataset's rows and both phases
SCRAPE_GAP_SECONDS = 0.1  # between scrapes, so the background collectors run meanwhile
# What Prometheus 2.x asks for: OpenMetrics first (the page it gets by default).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


async def fresh_database(admin_url: str) -> tuple[str, str]:
    name = f"bench_metrics_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return name, urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


def record_scheduling(metrics: Metrics, chain: str) -> None:
    """What the scheduling activities record for a chain that started ranges (needs Temporal)."""
    metrics.blocks_scheduled.labels(chain, "direct").inc(INDEXED_BLOCKS)
    metrics.workflows_started.labels(chain, "IndexRange").inc()
    metrics.workflows_started.labels(chain, "Scheduler").inc()
    metrics.schedule_batch_duration.labels(chain).observe(0.02)
    metrics.scheduler_parallelism.labels(chain).set(8)
    metrics.inflight_ranges.labels(chain).set(0)


async def populate(metrics: Metrics, pool: asyncpg.Pool, url: str, chains: list[str]) -> None:
    """Scan and index every chain through the real activities, at most 8 chains at once."""
    cache = ChainCache(pool, metrics)
    scans = ScanHeadActivities(cache)
    ranges = IndexRangeActivities(cache, ByteBudget(256 * 1024 * 1024, metrics))
    room = asyncio.Semaphore(8)

    async def one(chain: str) -> None:
        async with room:
            await ActivityEnvironment().run(scans.scan_head, ScanHeadInput(chain))
            request = IndexRangeInput(chain, 0, INDEXED_BLOCKS - 1)
            await ActivityEnvironment().run(ranges.index_range, request)
            record_scheduling(metrics, chain)

    try:
        await asyncio.gather(*(one(chain) for chain in chains))
    finally:
        await cache.close()


def page_renderer(registry: CollectorRegistry) -> Callable[[], bytes]:
    """What the server renders a text page with: exporter/exposition.py where it exists (after
    issue 24), else prometheus_client's generate_latest (before)."""
    import exporter.server

    renderer = getattr(exporter.server, "Renderer", None)  # the editable install may still
    if renderer is None:  # import exporter.exposition from another checkout: ask the server
        return lambda: exposition.generate_latest(registry)
    page: Callable[[], bytes] = renderer(registry).text
    return page


def scrape(url: str, count: int, accept: str = "") -> tuple[list[float], str]:
    """`count` GETs of `url`, `SCRAPE_GAP_SECONDS` apart: each one's seconds to the last byte,
    and the last page."""
    seconds, page = [], b""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            page = response.read()
        seconds.append(time.perf_counter() - started)
        time.sleep(SCRAPE_GAP_SECONDS)
    return seconds, page.decode()


def series_by_family(page: str) -> tuple[int, dict[str, int]]:
    """Series on a text page (every sample line) and per family."""
    families: Counter[str] = Counter()
    for line in page.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            for suffix in ("_bucket", "_sum", "_count", "_created", "_total", "_info"):
                name = name.removesuffix(suffix)
            families[name] += 1
    return sum(families.values()), dict(families.most_common())


def profile_render(render: Callable[[], bytes], top: int = 12) -> list[str]:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        render()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return [line for line in out.getvalue().splitlines() if line.strip()][-top - 1 :]


async def run(chains: int, providers: int, scrapes: int, with_profile: bool) -> dict[str, Any]:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    sim = TestServer(build_app(SimChain(SimChainConfig(backlog=1_000, block_time=0))))
    await sim.start_server()
    name, database_url = await fresh_database(ADMIN_URL)
    pool = await create_pool(database_url)
    try:
        url = str(sim.make_url("/"))
        names = [f"chain{i:03d}" for i in range(chains)]
        for chain in names:
            named = [ProviderConfig(name=f"p{p}", url=url) for p in range(providers)]
            await upsert_chain(pool, ChainConfig(name=chain, providers=named))
        started = time.perf_counter()
        await populate(metrics, pool, url, names)
        populate_seconds = time.perf_counter() - started
        port = free_port()
        async with serving_metrics(
            metrics, "127.0.0.1", port, pool=pool, progress=True, database_url=database_url
        ):
            await asyncio.sleep(3)  # the progress collector's first refreshes (every 2 s)
            page = f"http://127.0.0.1:{port}/metrics"
            seconds, text = await asyncio.to_thread(scrape, page, scrapes)
            om_seconds, _ = await asyncio.to_thread(scrape, page, scrapes, PROMETHEUS_ACCEPT)
            renderer, render, render_cpu = page_renderer(registry), [], []
            for _ in range(10):
                began, began_cpu = time.perf_counter(), time.thread_time()
                renderer()
                render.append(time.perf_counter() - began)
                render_cpu.append(time.thread_time() - began_cpu)
            collectors = {
                name: registry.get_sample_value(
                    "tindexer_collector_duration_seconds", {"collector": name}
                )
                for name in ("progress", "postgres", "pg_pool")
            }
        series, families = series_by_family(text)
        result: dict[str, Any] = {
            "chains": chains,
            "providers_per_chain": providers,
            "series": series,
            "series_per_chain": round(series / chains, 1),
            "scrapes": len(seconds),
            "scrape_p50_ms": round(statistics.median(seconds) * 1000, 2),
            "scrape_max_ms": round(max(seconds) * 1000, 2),
            "openmetrics_scrape_p50_ms": round(statistics.median(om_seconds) * 1000, 2),
            "openmetrics_scrape_max_ms": round(max(om_seconds) * 1000, 2),
            "render_p50_ms": round(statistics.median(render) * 1000, 2),
            # CPU time of one render: what a scrape costs the process, whatever else runs.
            "render_cpu_p50_ms": round(statistics.median(render_cpu) * 1000, 2),
            "populate_seconds": round(populate_seconds, 1),
            "collector_last_refresh_seconds": collectors,
            "families": families,
        }
        if with_profile:
            result["profile_render_x10"] = profile_render(renderer)
        return result
    finally:
        await pool.close()
        await sim.close()
        await drop_database(ADMIN_URL, name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", default="1,10,50,100")
    parser.add_argument("--providers", type=int, default=1)
    parser.add_argument("--scrapes", type=int, default=60)
    parser.add_argument("--variant", default="after")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    counts = [int(n) for n in args.chains.split(",")]
    command = "make bench-metrics-scrape " + " ".join(sys.argv[1:])
    runs = []
    for n in counts:
        load = [round(x, 2) for x in os.getloadavg()]
        result = await run(n, args.providers, args.scrapes, args.profile and n == max(counts))
        result = {"load_average_at_start": load, **result}
        print(
            f"{args.variant}: {n} chains: {result['series']:,} series"
            f" ({result['series_per_chain']}/chain), scrape p50 {result['scrape_p50_ms']} ms,"
            f" max {result['scrape_max_ms']} ms (OpenMetrics p50"
            f" {result['openmetrics_scrape_p50_ms']} ms), render p50 {result['render_p50_ms']} ms"
            f" ({result['render_cpu_p50_ms']} ms CPU)",
            flush=True,
        )
        runs.append(result)
    path = RESULTS / "metrics_scrape.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    # Runs of other chain counts stay: `--chains 100` alternated between two commits compares
    # them under the same load.
    kept = [r for r in previous.get(args.variant, {}).get("runs", []) if r["chains"] not in counts]
    runs = sorted(kept + runs, key=lambda r: r["chains"])
    previous[args.variant] = {**provenance(command), "runs": runs}
    print(write_result("metrics_scrape", previous))


if __name__ == "__main__":
    asyncio.run(main())
