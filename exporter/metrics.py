"""Every metric the indexer exports, declared once. Labels stay bounded: never a block or hash.

Each family's help text is its docstring: one full sentence, the unit in the name. Code that
records a metric takes a `Metrics`; tests pass `Metrics(CollectorRegistry())` and assert exact
values with `registry.get_sample_value(...)`. `docs/metrics.md` is generated from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# What a JSON-RPC request can end in (chain/rpc.py): every chain's counters start at zero.
RPC_OUTCOMES = ("ok", "rate_limited", "timeout", "too_large", "bad_data", "error")
# Reasons of tindexer_workflow_start_failures_total: Temporal's gRPC status names in lower case,
# but resource_exhausted (counted as rate limiting) and ok.
WORKFLOW_START_FAILURE_REASONS = (
    "cancelled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
)
# Workflow types the indexer starts itself (tindexer_workflows_started_total's `workflow`).
STARTED_WORKFLOWS = ("IndexRange", "Scheduler")
# What a chain can index (indexer/datasets.py, which the exporter may not import; a unit test
# keeps the two equal): every chain's row counters start at zero for each.
DATASETS = ("blocks", "transactions", "receipts", "logs")


class ObservedCounter(Collector):
    """A counter whose value is read from elsewhere (e.g. pg_stat_database), not incremented.

    prometheus_client's Counter can only be incremented; this one is set to the source's
    cumulative value, and still exposes the `counter` type with the `_total` suffix.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        if registry is not None:
            registry.register(self)

    def set(self, value: float, *labelvalues: str) -> None:
        self._values[tuple(labelvalues)] = value

    def clear(self) -> None:
        self._values.clear()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labelvalues, value in self._values.items():
            family.add_metric(list(labelvalues), value)
        yield family

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]


class Metrics:
    """The indexer's metric families."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        r = registry

        # --- Scheduling ---------------------------------------------------------------------
        self.blocks_scheduled = Counter(
            "tindexer_blocks_scheduled_total",
            "Blocks covered by IndexRange workflows the indexer started, by scheduling mode.",
            ["chain", "mode"],
            registry=r,
        )
        self.workflows_started = Counter(
            "tindexer_workflows_started_total",
            "Workflows the indexer started (new runs only, not reused running ones), by type.",
            ["chain", "workflow"],
            registry=r,
        )
        self.workflow_start_failures = Counter(
            "tindexer_workflow_start_failures_total",
            "Workflow start attempts refused for a reason other than rate limiting (then retried).",
            ["chain", "reason"],
            registry=r,
        )
        self.schedule_batch_duration = Histogram(
            "tindexer_schedule_batch_duration_seconds",
            "Time to start one batch of IndexRange workflows through the start pool.",
            ["chain"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scheduler_continue_as_new = Counter(
            "tindexer_scheduler_continue_as_new_total",
            "Times a Scheduler workflow continued as new, after continue_as_new_threshold starts"
            " or with a full history.",
            ["chain"],
            registry=r,
        )
        self.scheduler_parallelism = Gauge(
            "tindexer_scheduler_parallelism",
            "Size of the worker pool that starts IndexRange workflows (multiplier × CPU or set).",
            ["chain"],
            registry=r,
        )
        self.inflight_ranges = Gauge(
            "tindexer_inflight_ranges",
            "IndexRange workflows started and not yet finished, as the Scheduler last counted.",
            ["chain"],
            registry=r,
        )

        # --- Temporal task queues (DescribeTaskQueue with report_stats) ----------------------
        queue_labels = ["task_queue", "type"]
        self.task_queue_backlog = Gauge(
            "tindexer_task_queue_backlog",
            "Approximate tasks waiting in a Temporal task queue for a worker to poll them.",
            queue_labels,
            registry=r,
        )
        self.task_queue_backlog_age = Gauge(
            "tindexer_task_queue_backlog_age_seconds",
            "Age of the oldest task waiting in a Temporal task queue.",
            queue_labels,
            registry=r,
        )
        self.task_queue_pollers = Gauge(
            "tindexer_task_queue_pollers",
            "Workers that polled a Temporal task queue recently.",
            queue_labels,
            registry=r,
        )
        self.task_queue_add_rate = Gauge(
            "tindexer_task_queue_add_rate",
            "Tasks added to a Temporal task queue per second, as the server estimates it.",
            queue_labels,
            registry=r,
        )
        self.task_queue_dispatch_rate = Gauge(
            "tindexer_task_queue_dispatch_rate",
            "Tasks dispatched from a Temporal task queue per second, as the server estimates it.",
            queue_labels,
            registry=r,
        )

        # --- Rate limits and errors ---------------------------------------------------------
        self.rate_limited = Counter(
            "tindexer_rate_limited_total",
            "Requests refused for rate limiting, by who refused them (temporal or rpc).",
            ["source"],
            registry=r,
        )
        self.rpc_requests = Counter(
            "tindexer_rpc_requests_total",
            "JSON-RPC HTTP requests sent to a chain's provider, by outcome: ok, rate_limited,"
            " timeout, too_large (answer over rpc_max_response_bytes), bad_data (an answer"
            " that is not valid JSON-RPC or chain data) or error.",
            ["chain", "provider", "method", "outcome"],
            registry=r,
        )
        self.rpc_request_duration = Histogram(
            "tindexer_rpc_request_duration_seconds",
            "Time from sending a JSON-RPC HTTP request to reading its whole answer.",
            ["chain", "provider", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rpc_retry_after_clamped = Counter(
            "tindexer_rpc_retry_after_clamped_total",
            "Retry-After values from a chain's provider that were negative, not a number or"
            " longer than the client waits (60 s), and so were clamped.",
            ["chain", "provider"],
            registry=r,
        )
        self.rpc_concurrency_limit = Gauge(
            "tindexer_rpc_concurrency_limit",
            "Current adaptive limit on JSON-RPC requests in flight to a chain's provider.",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_head_lag = Gauge(
            "tindexer_provider_head_lag_blocks",
            "Blocks a provider's latest available block was below the best provider's at the"
            " last head scan (0 for the best).",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_head = Gauge(
            "tindexer_provider_head",
            "A provider's latest available block (head-1 rule) at the last head scan.",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_up = Gauge(
            "tindexer_provider_up",
            "Whether a provider takes requests (1) or its circuit is open after repeated"
            " failures (0) until a probe succeeds.",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_circuit_opened = Counter(
            "tindexer_provider_circuit_opened_total",
            "Times a provider was taken out of rotation after repeated failures.",
            ["chain", "provider"],
            registry=r,
        )
        self.chain_id = Gauge(
            "tindexer_chain_id",
            "The chain id a chain is pinned to (its chain_id knob, else stored when learned).",
            ["chain"],
            registry=r,
        )
        self.provider_chain_id = Gauge(
            "tindexer_provider_chain_id",
            "The chain id a provider last answered to eth_chainId.",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_chain_id_mismatch = Gauge(
            "tindexer_provider_chain_id_mismatch",
            "Whether a provider answers another chain id than the chain's (1): it is kept out"
            " of rotation and nothing from it is used.",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_head_unverified = Gauge(
            "tindexer_provider_head_unverified",
            "Whether a provider's last head claim was not adopted (1): no other provider"
            " witnessed it and it did not serve the block (it is demoted meanwhile).",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_head_rejected = Counter(
            "tindexer_provider_head_rejected_total",
            "Head claims of a provider that were not adopted (unverified heads).",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_fork_disagreements = Counter(
            "tindexer_provider_fork_disagreements_total",
            "Forks a provider reported that the other providers did not confirm; nothing was"
            " deleted for them.",
            ["chain", "provider"],
            registry=r,
        )
        self.provider_rate_limit = Gauge(
            "tindexer_provider_rate_limit_requests_per_second",
            "Requests per second this worker currently allows itself to a provider (its"
            " max_requests_per_second share, cut on 429s and recovering); 0 when unlimited.",
            ["chain", "provider"],
            registry=r,
        )
        self.rpc_receipts_method = Gauge(
            "tindexer_rpc_receipts_method",
            "Which JSON-RPC method fetches a chain's receipts: 1 for the one in use"
            " (eth_getBlockReceipts, or eth_getTransactionReceipt where the provider lacks it),"
            " 0 for the other.",
            ["chain", "method"],
            registry=r,
        )
        self.temporal_request_errors = Counter(
            "tindexer_temporal_request_errors_total",
            "Temporal client calls made by the indexer that failed, by operation and status.",
            ["operation", "status"],
            registry=r,
        )

        # --- Progress -----------------------------------------------------------------------
        self.chain_head = Gauge(
            "tindexer_chain_head",
            "Latest available block of the chain (head-1 rule applied).",
            ["chain"],
            registry=r,
        )
        self.chain_last_indexed = Gauge(
            "tindexer_chain_last_indexed",
            "Newest block stored for the chain with every enabled dataset.",
            ["chain"],
            registry=r,
        )
        self.chain_missing_blocks = Gauge(
            "tindexer_chain_missing_blocks",
            "Blocks between the chain's first block and its head not yet stored with every"
            " enabled dataset.",
            ["chain"],
            registry=r,
        )
        self.chain_gap_ranges = Gauge(
            "tindexer_chain_gap_ranges",
            "Contiguous runs of missing blocks between the first block and the head.",
            ["chain"],
            registry=r,
        )
        self.chain_live_sync = Gauge(
            "tindexer_chain_live_sync",
            "Whether the newest stored block is within live_sync_lag of the head (1) or not (0).",
            ["chain"],
            registry=r,
        )
        self.backfill_eta = Gauge(
            "tindexer_backfill_eta_seconds",
            "Estimated seconds until no block is missing, at the recent indexing rate.",
            ["chain"],
            registry=r,
        )
        self.blocks_indexed = Counter(
            "tindexer_blocks_indexed_total",
            "Blocks written to PostgreSQL by IndexRange activities.",
            ["chain"],
            registry=r,
        )
        self.rows_indexed = Counter(
            "tindexer_rows_indexed_total",
            "Rows IndexRange activities stored for blocks that lacked them, by dataset: blocks,"
            " transactions, receipts (transactions with their receipt) and logs.",
            ["chain", "dataset"],
            registry=r,
        )
        self.dataset_missing_blocks = Gauge(
            "tindexer_dataset_missing_blocks",
            "Blocks between the chain's first block and its head whose rows of an enabled"
            " dataset are not stored yet.",
            ["chain", "dataset"],
            registry=r,
        )
        self.reorgs = Counter(
            "tindexer_reorgs_total",
            "Chain reorganisations detected and repaired near the head.",
            ["chain"],
            registry=r,
        )
        self.reorg_depth = Histogram(
            "tindexer_reorg_depth",
            "Depth in blocks of each repaired reorganisation.",
            ["chain"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.fork_too_deep = Gauge(
            "tindexer_chain_fork_too_deep",
            "Whether the last reorg check found a fork deeper than max_reorg_depth (1), which"
            " stops the chain with nothing deleted, or none (0).",
            ["chain"],
            registry=r,
        )
        self.head_regressions = Counter(
            "tindexer_rpc_head_regressions_total",
            "Head scans in which the provider's latest block was below the chain's head (the"
            " highest it answered before): a lagging or resyncing node, never a reorg.",
            ["chain"],
            registry=r,
        )
        self.finalized_block = Gauge(
            "tindexer_chain_finalized_block",
            "The chain's final block at the last reorg check (its finality knob: the node's"
            " finalized or safe block, or head minus a depth): reorg checks stop above it.",
            ["chain"],
            registry=r,
        )
        self.fork_below_finality = Gauge(
            "tindexer_chain_fork_below_finality",
            "Whether the last reorg check found stored blocks that differ from the provider's"
            " at or below the final block (1), which stops the chain with nothing deleted, or"
            " none (0).",
            ["chain"],
            registry=r,
        )
        self.forks_below_finality = Counter(
            "tindexer_forks_below_finality_total",
            "Reorg checks that found stored blocks differing from the provider's at or below"
            " the final block: alerted, never repaired.",
            ["chain"],
            registry=r,
        )
        self.head_lag = Gauge(
            "tindexer_rpc_head_lag_blocks",
            "Blocks the provider's latest block was below the chain's head at the last head scan.",
            ["chain"],
            registry=r,
        )
        self.index_range_duration = Histogram(
            "tindexer_index_range_duration_seconds",
            "Time an IndexRange activity spends per phase (fetch from RPC, store to PostgreSQL).",
            ["chain", "phase"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        # --- Activities ---------------------------------------------------------------------
        self.activity_duration = Histogram(
            "tindexer_activity_duration_seconds",
            "Time an activity attempt took on this worker, by activity and outcome.",
            ["activity", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.activity_timeouts = Counter(
            "tindexer_activity_timeouts_total",
            "Activity attempts that ended in a timeout (start-to-close or heartbeat).",
            ["activity"],
            registry=r,
        )
        self.activities_handed_back = Counter(
            "tindexer_activities_handed_back_total",
            "Activity tasks that reached this worker after it began to stop, handed back unrun.",
            ["activity"],
            registry=r,
        )

        # --- Worker memory budget (indexer/chain/budget.py) ------------------------------------
        self.worker_memory_budget = Gauge(
            "tindexer_worker_memory_budget_bytes",
            "JSON-RPC answer bytes this worker may hold at once (worker_memory_budget_bytes).",
            registry=r,
        )
        self.worker_bytes_in_flight = Gauge(
            "tindexer_worker_in_flight_bytes",
            "JSON-RPC answer bytes this worker holds now: batches fetched or being fetched and"
            " not yet stored.",
            registry=r,
        )
        self.worker_budget_wait = Counter(
            "tindexer_worker_budget_wait_seconds_total",
            "Time batches spent waiting for room in this worker's memory budget, summed over"
            " the waiting batches.",
            registry=r,
        )

        # --- Replica autoscaling (the `tindexer workers --autoscale` supervisor) ------------
        self.replicas_desired = Gauge(
            "tindexer_replicas_desired",
            "Worker replicas the autoscaler wants for a chain's backlog, within its bounds.",
            ["chain"],
            registry=r,
        )
        self.replicas_current = Gauge(
            "tindexer_replicas_current",
            "Worker replicas running for a chain, not counting those draining to stop.",
            ["chain"],
            registry=r,
        )
        self.replicas_min = Gauge(
            "tindexer_replicas_min",
            "The chain's configured min_replicas, as the autoscaler last read it.",
            ["chain"],
            registry=r,
        )
        self.replicas_max = Gauge(
            "tindexer_replicas_max",
            "The chain's configured max_replicas, as the autoscaler last read it.",
            ["chain"],
            registry=r,
        )

        # --- PostgreSQL health (collected on an interval, never on the scrape path) ---------
        self.pg_up = Gauge(
            "tindexer_pg_up",
            "Whether the last PostgreSQL health collection connected and ran (1) or not (0).",
            registry=r,
        )
        self.pg_connections = Gauge(
            "tindexer_pg_connections",
            "Server connections by state (active, idle, idle in transaction, …).",
            ["state"],
            registry=r,
        )
        self.pg_max_connections = Gauge(
            "tindexer_pg_max_connections",
            "The server's max_connections setting.",
            registry=r,
        )
        self.pg_connection_utilization = Gauge(
            "tindexer_pg_connection_utilization_ratio",
            "Server connections in use over max_connections.",
            registry=r,
        )
        self.pg_locks_waiting = Gauge(
            "tindexer_pg_locks_waiting",
            "Lock requests waiting to be granted (not merely held).",
            registry=r,
        )
        self.pg_lock_wait_oldest = Gauge(
            "tindexer_pg_lock_wait_oldest_seconds",
            "How long the longest-waiting lock request has waited.",
            registry=r,
        )
        self.pg_deadlocks = ObservedCounter(
            "tindexer_pg_deadlocks_total",
            "Deadlocks detected in the indexer's database since statistics were reset.",
            registry=r,
        )
        self.pg_longest_transaction = Gauge(
            "tindexer_pg_longest_transaction_seconds",
            "Age of the oldest open transaction on the server.",
            registry=r,
        )
        self.pg_database_size = Gauge(
            "tindexer_pg_database_size_bytes",
            "Size of the indexer's database on disk.",
            registry=r,
        )
        self.pg_cache_hit_ratio = Gauge(
            "tindexer_pg_cache_hit_ratio",
            "Share of block reads in the indexer's database served from shared buffers.",
            registry=r,
        )
        self.pg_probe_latency = Histogram(
            "tindexer_pg_probe_latency_seconds",
            "Round trip of an active `SELECT 1` probe on the health connection.",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.pg_query_duration = Histogram(
            "tindexer_pg_query_duration_seconds",
            "Duration of the indexer's own queries, by a fixed query name.",
            ["query"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.pg_pool_connections = Gauge(
            "tindexer_pg_pool_connections",
            "Connections of this process's asyncpg pool, by state (in_use, idle, max).",
            ["state"],
            registry=r,
        )
        self.pg_statement_calls = ObservedCounter(
            "tindexer_pg_statement_calls_total",
            "Calls of the top statements by total time (pg_stat_statements), by rank.",
            ["rank", "query"],
            registry=r,
        )
        self.pg_statement_time = ObservedCounter(
            "tindexer_pg_statement_seconds_total",
            "Total execution time of the top statements (pg_stat_statements), by rank.",
            ["rank", "query"],
            registry=r,
        )

        # --- Collectors' own health ----------------------------------------------------------
        self.collector_duration = Gauge(
            "tindexer_collector_duration_seconds",
            "How long a background collector's last refresh took.",
            ["collector"],
            registry=r,
        )
        self.collector_last_success = Gauge(
            "tindexer_collector_last_success_timestamp_seconds",
            "Unix time of a background collector's last successful refresh.",
            ["collector"],
            registry=r,
        )
        self.collector_errors = Counter(
            "tindexer_collector_errors_total",
            "Refreshes of a background collector that failed.",
            ["collector"],
            registry=r,
        )

        # --- Temporal health and build --------------------------------------------------------
        self.temporal_up = Gauge(
            "tindexer_temporal_up",
            "Whether the last Temporal health check answered (1) or not (0).",
            registry=r,
        )
        self.temporal_health_latency = Gauge(
            "tindexer_temporal_health_latency_seconds",
            "Round trip of the last Temporal health check.",
            registry=r,
        )
        for source in ("temporal", "rpc"):
            self.rate_limited.labels(source)
        self.build_info = Info(
            "tindexer_build",
            "Version of the running indexer, in its `version` label.",
            registry=r,
        )

        # Every family labelled by chain: what forget_chain clears.
        self._per_chain = [
            family
            for family in vars(self).values()
            if isinstance(family, MetricWrapperBase) and "chain" in family._labelnames
        ]

    def touch_chain(self, chain: str) -> None:
        """Create a chain's counters at zero, so rate() and increase() see their first event."""
        self.reorgs.labels(chain)
        self.forks_below_finality.labels(chain)
        self.head_regressions.labels(chain)
        self.blocks_indexed.labels(chain)
        for dataset in DATASETS:
            self.rows_indexed.labels(chain, dataset)
        self.scheduler_continue_as_new.labels(chain)
        for mode in ("direct", "scheduler"):
            self.blocks_scheduled.labels(chain, mode)
        for reason in WORKFLOW_START_FAILURE_REASONS:
            self.workflow_start_failures.labels(chain, reason)
        for workflow in STARTED_WORKFLOWS:
            self.workflows_started.labels(chain, workflow)

    def touch_provider(self, chain: str, provider: str) -> None:
        """Create a provider's counters at zero, so rate() and increase() see their first event."""
        for outcome in RPC_OUTCOMES:
            self.rpc_requests.labels(chain, provider, "eth_getBlockByNumber", outcome)
        self.rpc_retry_after_clamped.labels(chain, provider)
        self.provider_circuit_opened.labels(chain, provider)
        self.provider_head_rejected.labels(chain, provider)
        self.provider_fork_disagreements.labels(chain, provider)
        self.provider_head_unverified.labels(chain, provider).set(0)
        self.provider_chain_id_mismatch.labels(chain, provider).set(0)

    def forget_chain(self, chain: str) -> None:
        """Remove every series of a chain that is gone: a deleted chain's gauges fire no alert."""
        for family in self._per_chain:
            names = family._labelnames
            stale = {
                tuple(sample.labels[name] for name in names)
                for metric in family.collect()
                for sample in metric.samples
                if sample.labels.get("chain") == chain
            }
            for labelvalues in stale:
                family.remove(*labelvalues)


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The process-wide metrics on prometheus_client's default registry."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default
