"""`tindexer loadtest`: a backlog indexed end to end on real parts, measured from the outside.

Starts a Temporal dev server (SQLite + WAL, as `up` does), PostgreSQL (DATABASE_URL or embedded),
the simulated chain with the whole backlog already mined (or, given `rpc_url`, a node such as
anvil whose blocks 0..head are the backlog), an OTLP sink for traces, and `workers`
`tindexer worker` processes (one by default) with metrics and tracing on. This process then
starts the chain's HeadScan and watches: every `poll_seconds` it reads coverage from
PostgreSQL and samples each process's RSS and CPU time (and, until all is scheduled, scrapes
the workers' /metrics), until every block is stored. It checks the result (blocks 0..N-1,
once each) and returns the timings and the series for plots.

`profile` picks the simulated chain's block content (`default`: 3 cheap transactions;
`mainnet`: ~150 transactions with calldata, ~2 logs each, receipts). Each sample of the series
also holds every worker's RSS, and the sum of any worker metrics named in `series_metrics`
(the workers are then scraped at every sample, not only until all is scheduled).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from prometheus_client.parser import text_string_to_metric_families

from indexer import services
from indexer.config import ChainConfig
from indexer.embedded import free_port
from indexer.simchain.profiles import PROFILES
from indexer.store.blocks import block_census
from indexer.store.chains import upsert_chain
from indexer.store.db import backend_pid, create_pool
from indexer.store.ranges import coverage
from indexer.temporal_client import connect_temporal, head_scan_id, start_head_scan

STALL_SECONDS = 120.0  # a run that indexes nothing for this long has failed, not slowed
# Processes (RSS, CPU) and workers' /metrics are sampled at most this often, and at the end:
# a sample costs milliseconds of CPU that the run's own processes would otherwise have.
SAMPLE_SECONDS = 0.25


@dataclass
class LoadtestResult:
    blocks: int
    txs_per_block: int
    schedule_seconds: float
    index_seconds: float
    blocks_per_second: float
    failed_starts: float
    rate_limited: float
    activity_timeouts: float
    activity_attempts: float
    lost_blocks: int
    duplicate_blocks: int
    peak_rss_bytes: dict[str, int]
    cpu_seconds: dict[str, float]  # user + system, by process, from the first sample to the end
    series: list[dict[str, float]] = field(default_factory=list)
    profile: str | None = None
    # Seconds the workers' IndexRange activities spent per phase (fetch, store), summed, and
    # how many phases were observed: tindexer_index_range_duration_seconds at the end.
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phase_count: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)  # what `check` returned
    # p95 of the store's queries (tindexer_pg_query_duration_seconds, every query, all workers)
    # at the end of the run, from the summed buckets; None when no query was timed.
    pg_query_p95_seconds: float | None = None
    # By query name: the store's COPY transactions apart from the point queries.
    pg_query_p95_seconds_by_query: dict[str, float | None] = field(default_factory=dict)

    @property
    def activity_timeout_rate(self) -> float:
        return self.activity_timeouts / self.activity_attempts if self.activity_attempts else 0.0


def sum_samples(texts: list[str], name: str, **labels: str) -> float:
    """A sample summed over every worker's exposition (its series with `labels`)."""
    total = 0.0
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
    return total


def _by_label(texts: list[str], name: str, label: str) -> dict[str, float]:
    """A sample summed over every worker's exposition, by the value of one label."""
    totals: dict[str, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and label in sample.labels:
                    key = sample.labels[label]
                    totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _p95_by_query(texts: list[str]) -> dict[str, float | None]:
    """p95 of tindexer_pg_query_duration_seconds for each query name, over every worker."""
    buckets: dict[str, dict[float, float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "tindexer_pg_query_duration_seconds_bucket":
                    query = buckets.setdefault(sample.labels["query"], {})
                    bound = float(sample.labels["le"])
                    query[bound] = query.get(bound, 0.0) + sample.value
    return {name: histogram_quantile(0.95, counts) for name, counts in sorted(buckets.items())}


def histogram_quantile(quantile: float, buckets: dict[float, float]) -> float | None:
    """The quantile of cumulative bucket counts by upper bound, as PromQL's histogram_quantile
    estimates it: linear within the bucket it falls in; in the +Inf bucket, the highest finite
    bound. None for an empty histogram."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = quantile * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _buckets(texts: list[str], name: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts, summed over every worker and label set, by le."""
    return {float(le): count for le, count in _by_label(texts, f"{name}_bucket", "le").items()}


def _cpu_by_pid(process: psutil.Process, with_children: bool = False) -> dict[int, float]:
    """CPU seconds (user + system) used so far by a process (and its children), by pid."""
    try:
        processes = [process, *process.children(recursive=True)] if with_children else [process]
        return {p.pid: sum(p.cpu_times()[:2]) for p in processes if p.is_running()}
    except psutil.Error:
        return {}


def _rss(process: psutil.Process, with_children: bool = False) -> int:
    """Resident memory of a process (and its children: PostgreSQL's backends)."""
    try:
        processes = [process, *process.children(recursive=True)] if with_children else [process]
        return sum(p.memory_info().rss for p in processes if p.is_running())
    except psutil.Error:
        return 0


async def _postgres_root(pool: asyncpg.Pool) -> psutil.Process:
    """The postmaster: the parent of the backend serving us (PostgreSQL forks one per client)."""
    backend = await backend_pid(pool)
    parent = psutil.Process(backend).parent()
    assert parent is not None
    return parent


@contextlib.contextmanager
def removed_unless_failed(work: Path, log: Callable[[str], object]) -> Iterator[None]:
    """The run's directory (its PostgreSQL, Temporal's database, logs: GBs for a big backlog)
    is deleted after the run; a failed run keeps it for its logs, and says where."""
    try:
        yield
    except BaseException:
        log(f"the run's logs and databases are kept in {work}")
        raise
    shutil.rmtree(work, ignore_errors=True)


async def run_loadtest(
    blocks: int,
    txs_per_block: int = 3,
    chain_knobs: dict[str, Any] | None = None,
    worker_options: list[str] | None = None,
    log=print,  # type: ignore[no-untyped-def]
    rpc_url: str | None = None,
    poll_seconds: float = 1.0,
    workers: int = 1,
    watch: dict[str, int] | None = None,
    profile: str | None = None,
    series_metrics: tuple[str, ...] = (),
    check: Callable[[asyncpg.Pool, int], Awaitable[dict[str, Any]]] | None = None,
    max_worker_rss_bytes: int | None = None,
) -> LoadtestResult:
    """Index `blocks` blocks end to end and measure it.

    With `rpc_url` no simulated chain is started: that node is indexed instead, and the backlog
    is its blocks 0..head (`blocks` is then head + 1, whatever was passed). `poll_seconds` is
    how often coverage is read, hence the resolution of `index_seconds` (processes are sampled
    every SAMPLE_SECONDS or poll, whichever is longer). `workers` worker
    processes poll the task queue, as replicas would; peak RSS is then the largest of them.
    `watch` names other processes (by pid) whose RSS and CPU time to report too, e.g. a node.
    `profile` is the simulated chain's block profile (`mainnet`: ~150 transactions with calldata
    and ~2 logs each); it replaces `txs_per_block`. `check(pool, chain_id)` runs on the stored
    data before the services stop; what it returns is the result's `checks`. A run whose
    workers together hold more than `max_worker_rss_bytes` is stopped (RuntimeError): on a
    shared machine, before it runs out of memory.
    """
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    if profile is not None:
        txs_per_block = PROFILES[profile].txs_per_block
    if rpc_url is not None:
        async with aiohttp.ClientSession() as http:
            request = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
            async with http.post(rpc_url, json=request) as response:
                blocks = int((await response.json())["result"], 16) + 1
    work = Path(tempfile.mkdtemp(prefix="tindexer-loadtest-"))
    ports = {name: free_port() for name in ("temporal", "sim", "sink")}
    metrics_ports = [free_port() for _ in range(workers)]
    with contextlib.ExitStack() as stack:
        # Entered first, so it runs last: once every process below has stopped.
        stack.enter_context(removed_unless_failed(work, log))
        database_url = stack.enter_context(
            services.database(os.environ.get("DATABASE_URL"), work / "pg")
        )
        temporal = stack.enter_context(
            services.temporal_dev_server(
                ports["temporal"], work / "temporal.log", db_file=work / "temporal.db"
            )
        )
        sim = None
        if rpc_url is None:
            content: dict[str, object] = (
                {"profile": profile} if profile else {"txs_per_block": txs_per_block}
            )
            sim = stack.enter_context(
                services.sim_chain(
                    ports["sim"], work / "sim.log", backlog=blocks, block_time=0, **content
                )
            )
        sink = stack.enter_context(services.otlp_sink(ports["sink"]))
        task_queue = f"loadtest-{uuid.uuid4().hex[:6]}"
        (work / "worker.toml").write_text(f'task_queue = "{task_queue}"\n')
        worker_env = {
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": f"{services.HOST}:{ports['temporal']}",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{services.HOST}:{ports['sink']}",
        }
        worker_processes = [
            stack.enter_context(
                services.worker(
                    [
                        "--config",
                        str(work / "worker.toml"),
                        "--metrics-port",
                        str(port),
                        *(worker_options or []),
                    ],
                    port,
                    work / f"worker-{number}.log",
                    worker_env,
                )
            )
            for number, port in enumerate(metrics_ports)
        ]
        pool = await create_pool(database_url, max_size=2)
        worker_names = ["worker"] if workers == 1 else [f"worker-{n}" for n in range(workers)]
        processes = {
            **{
                name: (psutil.Process(worker.pid), False)
                for name, worker in zip(worker_names, worker_processes, strict=True)
            },
            "temporal": (psutil.Process(temporal.pid), False),
            "postgres": (await _postgres_root(pool), True),
        }
        if sim is not None:
            processes["simulated_chain"] = (psutil.Process(sim.pid), False)
        processes["otlp_sink"] = (psutil.Process(sink.pid), False)
        for name, pid in (watch or {}).items():  # with children: a node behind a launcher
            processes[name] = (psutil.Process(pid), True)
        chain = ChainConfig(
            name=f"load{uuid.uuid4().hex[:6]}",
            rpc_url=rpc_url or f"http://127.0.0.1:{ports['sim']}",
            **(chain_knobs or {}),
        )
        row = await upsert_chain(pool, chain)
        client = await connect_temporal(f"127.0.0.1:{ports['temporal']}", tracing=False)

        async def scrape_workers() -> list[str]:
            """Every worker's exposition."""
            texts = []
            for port in metrics_ports:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    texts.append(await response.text())
            return texts

        peak = dict.fromkeys(processes, 0)
        cpu: dict[str, dict[int, float]] = {name: {} for name in processes}
        cpu_at_start: dict[str, dict[int, float]] = {name: {} for name in processes}
        series: list[dict[str, float]] = []
        schedule_seconds = None
        progress_mark = (-1, 0.0)  # (indexed blocks, when that count was first seen)
        last = blocks - 1
        async with aiohttp.ClientSession() as http:
            started = time.perf_counter()
            await start_head_scan(client, chain.name, task_queue)
            sampled = -SAMPLE_SECONDS
            while True:
                now = time.perf_counter() - started
                covered = await coverage(pool, row.id, 0, last)
                indexed = blocks - covered.missing_blocks
                if covered.missing_blocks and now - sampled < SAMPLE_SECONDS:
                    await asyncio.sleep(poll_seconds)  # the end is seen to within a poll
                    continue
                sampled = now
                sample: dict[str, float] = {}
                if schedule_seconds is None or series_metrics:
                    # Scraped only until all is scheduled (unless series_metrics asks for more):
                    # each scrape costs the workers CPU (a quarter of it at 4 scrapes/s in a
                    # short run), which is not indexing.
                    texts = await scrape_workers()
                    scheduled = sum_samples(
                        texts, "tindexer_blocks_scheduled_total", chain=chain.name
                    )
                    if schedule_seconds is None and scheduled >= blocks:
                        schedule_seconds = now
                    for metric in series_metrics:
                        sample[metric] = sum_samples(texts, metric)
                for name, (process, children) in processes.items():
                    rss = _rss(process, children)
                    peak[name] = max(peak[name], rss)
                    if name in worker_names:
                        sample[f"rss_{name}"] = rss
                    used = _cpu_by_pid(process, children)
                    cpu[name].update(used)
                    for pid, seconds in used.items():
                        cpu_at_start[name].setdefault(pid, seconds)
                workers_rss = sum(v for k, v in sample.items() if k.startswith("rss_"))
                if max_worker_rss_bytes is not None and workers_rss > max_worker_rss_bytes:
                    raise RuntimeError(
                        f"workers' RSS {workers_rss / 2**30:.1f} GiB above the limit "
                        f"{max_worker_rss_bytes / 2**30:.1f} GiB at {indexed:,} of {blocks:,} "
                        f"blocks after {now:.0f} s"
                    )
                series.append(
                    {
                        "seconds": round(now, 2),
                        "indexed": indexed,
                        "backlog": covered.missing_blocks,
                        **sample,
                    }
                )
                if covered.missing_blocks == 0:
                    break
                if indexed > progress_mark[0]:
                    progress_mark = (indexed, now)
                elif now - progress_mark[1] > STALL_SECONDS:
                    raise RuntimeError(
                        f"no progress for {STALL_SECONDS:.0f} s at {indexed:,} of {blocks:,} "
                        f"blocks; see the workers' logs in {work}"
                    )
                await asyncio.sleep(poll_seconds)
            index_seconds = time.perf_counter() - started
            texts = await scrape_workers()
        log(f"indexed {blocks:,} blocks in {index_seconds:.1f} s")
        await client.get_workflow_handle(head_scan_id(chain.name)).terminate()
        census = await block_census(pool, row.id)
        checks = await check(pool, row.id) if check is not None else {}
        await pool.close()
    assert census.lowest == 0 and census.highest == last, census
    return LoadtestResult(
        blocks=blocks,
        txs_per_block=txs_per_block,
        schedule_seconds=round(schedule_seconds or index_seconds, 2),
        index_seconds=round(index_seconds, 2),
        blocks_per_second=round(blocks / index_seconds, 1),
        failed_starts=sum_samples(texts, "tindexer_workflow_start_failures_total"),
        rate_limited=sum_samples(texts, "tindexer_rate_limited_total"),
        activity_timeouts=sum_samples(texts, "tindexer_activity_timeouts_total"),
        activity_attempts=sum_samples(
            texts, "tindexer_activity_duration_seconds_count", activity="index_range"
        ),
        lost_blocks=blocks - census.distinct,
        duplicate_blocks=census.rows - census.distinct,
        peak_rss_bytes={"worker": max(peak[name] for name in worker_names), **peak},
        cpu_seconds={
            name: round(sum(by_pid.values()) - sum(cpu_at_start[name].values()), 1)
            for name, by_pid in cpu.items()
        },
        series=series,
        profile=profile,
        phase_seconds=_by_label(texts, "tindexer_index_range_duration_seconds_sum", "phase"),
        phase_count=_by_label(texts, "tindexer_index_range_duration_seconds_count", "phase"),
        checks=checks,
        pg_query_p95_seconds=histogram_quantile(
            0.95, _buckets(texts, "tindexer_pg_query_duration_seconds")
        ),
        pg_query_p95_seconds_by_query=_p95_by_query(texts),
    )
