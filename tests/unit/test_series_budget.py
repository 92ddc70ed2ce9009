"""The series a chain adds to /metrics stay within the budget of exporter/series_budget.py."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter.collectors.postgres import KNOWN_STATES, MAX_TOP_STATEMENTS
from exporter.exposition import Renderer
from exporter.metrics import DATASETS, Metrics
from exporter.series_budget import (
    FIXED_SERIES,
    SERIES_PER_CHAIN,
    SERIES_PER_DATASET,
    SERIES_PER_PROVIDER,
    budget,
)
from indexer.workflows.activity_names import ACTIVITY_NAMES, INDEX_RANGE
from indexer.workflows.task_queues import worker_task_queues

METHODS = ("eth_chainId", "eth_blockNumber", "eth_getBlockByNumber", "eth_getBlockReceipts")


def series(registry: CollectorRegistry) -> int:
    """Sample lines on the page /metrics serves."""
    page = Renderer(registry).text().decode()
    return sum(1 for line in page.splitlines() if line and not line.startswith("#"))


def run_provider(metrics: Metrics, chain: str, provider: str) -> None:
    """What a provider of a running chain records (chain/transport.py, chain/router.py)."""
    metrics.touch_provider(chain, provider)
    for method in METHODS:
        metrics.rpc_requests.labels(chain, provider, method, "ok").inc()
    metrics.rpc_request_duration.labels(chain, provider).observe(0.05)
    metrics.rpc_concurrency_limit.labels(chain, provider).set(16)
    metrics.provider_head_lag.labels(chain, provider).set(0)
    metrics.provider_head.labels(chain, provider).set(1000)
    metrics.provider_up.labels(chain, provider).set(1)
    metrics.provider_chain_id.labels(chain, provider).set(1)
    metrics.provider_rate_limit.labels(chain, provider).set(0)


def run_chain(metrics: Metrics, chain: str, datasets: tuple[str, ...] = DATASETS) -> None:
    """What a running chain records besides its providers' series, failures and reorgs
    included."""
    metrics.touch_chain(chain)
    for gauge in (
        metrics.chain_head,
        metrics.chain_last_indexed,
        metrics.chain_missing_blocks,
        metrics.chain_gap_ranges,
        metrics.chain_live_sync,
        metrics.backfill_eta,
        metrics.chain_id,
        metrics.head_lag,
        metrics.finalized_block,
        metrics.fork_too_deep,
        metrics.fork_below_finality,
        metrics.scheduler_parallelism,
        metrics.inflight_ranges,
        metrics.replicas_desired,
        metrics.replicas_current,
        metrics.replicas_min,
        metrics.replicas_max,
    ):
        gauge.labels(chain).set(1)
    for dataset in datasets:
        metrics.dataset_missing_blocks.labels(chain, dataset).set(0)
    for method in ("eth_getBlockReceipts", "eth_getTransactionReceipt"):
        metrics.rpc_receipts_method.labels(chain, method).set(0)
    for phase in ("fetch", "store"):
        metrics.index_range_duration.labels(chain, phase).observe(0.2)
    metrics.schedule_batch_duration.labels(chain).observe(0.02)
    metrics.reorg_depth.labels(chain).observe(1)
    metrics.workflow_start_failures.labels(chain, "unavailable").inc()


def fill_the_rest(metrics: Metrics, chain: str) -> None:
    """One series for each family labelled by chain (not by provider) that has none yet: a
    family added later counts against the budget without anyone listing it here."""
    for entry in metrics.declared:
        family = entry.family
        if "chain" not in entry.labels or "provider" in entry.labels:
            continue
        assert isinstance(family, Counter | Gauge | Histogram)
        samples = (sample for metric in family.collect() for sample in metric.samples)
        if not any(sample.labels.get("chain") == chain for sample in samples):
            family.labels(*(chain if name == "chain" else "x" for name in entry.labels))


def added(record: object, *args: object) -> int:
    """Series `record(metrics, *args)` adds to a fresh registry."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    before = series(registry)
    record(metrics, *args)  # type: ignore[operator]
    return series(registry) - before


def chain_with(metrics: Metrics, chain: str, providers: int, datasets: tuple[str, ...]) -> None:
    run_chain(metrics, chain, datasets)
    for n in range(providers):
        run_provider(metrics, chain, f"p{n}")
    fill_the_rest(metrics, chain)


def run_process(metrics: Metrics) -> None:
    """What `tindexer up` records whatever its chains: activities, queries, queues, health."""
    for name in ACTIVITY_NAMES:
        metrics.activities_handed_back.labels(name)
        for outcome in ("ok", "error"):
            metrics.activity_duration.labels(name, outcome).observe(0.1)
    metrics.activity_timeouts.labels(INDEX_RANGE).inc()
    for query in ("coverage", "dataset_coverage", "reorg_window", "store_range"):
        metrics.pg_query_duration.labels(query).observe(0.001)
    for queue in worker_task_queues("tindexer"):
        for kind in ("workflow", "activity"):
            for gauge in (
                metrics.task_queue_backlog,
                metrics.task_queue_backlog_age,
                metrics.task_queue_pollers,
                metrics.task_queue_add_rate,
                metrics.task_queue_dispatch_rate,
            ):
                gauge.labels(queue, kind).set(0)
    metrics.temporal_request_errors.labels("start_workflow", "unavailable").inc()
    for state in KNOWN_STATES:
        metrics.pg_connections.labels(state).set(0)
    for state in ("in_use", "idle", "max"):
        metrics.pg_pool_connections.labels(state).set(0)
    for rank in range(1, MAX_TOP_STATEMENTS + 1):
        metrics.pg_statement_calls.set(1, str(rank), f"SELECT {rank}")
        metrics.pg_statement_time.set(1, str(rank), f"SELECT {rank}")
    for collector in ("progress", "postgres", "pg_pool", "temporal_health", "temporal_sdk", "q"):
        metrics.collector_duration.labels(collector).set(0.01)
        metrics.collector_last_success.labels(collector).set(1.0)
        metrics.collector_errors.labels(collector)
    metrics.build_info.info({"version": "1"})


def test_fixed_series_are_within_budget() -> None:
    assert series(CollectorRegistry()) == 0
    fixed = added(run_process)
    print(f"fixed {fixed}")
    assert fixed <= FIXED_SERIES, f"a process has {fixed} series whatever its chains"


def test_a_chain_its_providers_and_datasets_are_within_budget() -> None:
    full = added(chain_with, "main", 0, DATASETS)
    provider = added(chain_with, "main", 1, DATASETS) - full
    registry = CollectorRegistry()
    chain_with(Metrics(registry), "main", 0, DATASETS)
    page = Renderer(registry).text().decode()
    dataset = page.count('dataset="') / len(DATASETS)
    chain = full - dataset * len(DATASETS)
    print(f"chain {chain}, provider {provider}, dataset {dataset}")
    assert chain <= SERIES_PER_CHAIN, f"a chain adds {chain} series"
    assert provider <= SERIES_PER_PROVIDER, f"a provider adds {provider} series"
    assert dataset <= SERIES_PER_DATASET, f"a dataset adds {dataset} series"


def test_a_hundred_chains_are_within_budget() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    run_process(metrics)
    for n in range(100):
        chain_with(metrics, f"chain{n:03d}", 1, DATASETS)
    assert series(registry) <= budget(100)
