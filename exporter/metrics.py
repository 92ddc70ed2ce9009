"""Every metric the indexer exports, declared once. Labels stay bounded: never a block or hash."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The indexer's metric families; pass a fresh registry in tests to assert exact values."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        # RPC provider
        self.rpc_requests = Counter(
            "tindexer_rpc_requests_total",
            "JSON-RPC HTTP requests sent to a chain's provider, by outcome.",
            ["chain", "method", "outcome"],
            registry=registry,
        )
        self.rpc_request_duration = Histogram(
            "tindexer_rpc_request_duration_seconds",
            "Time from sending a JSON-RPC HTTP request to reading its whole answer.",
            ["chain", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rpc_concurrency_limit = Gauge(
            "tindexer_rpc_concurrency_limit",
            "Current adaptive limit on JSON-RPC requests in flight to a chain's provider.",
            ["chain"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "tindexer_rate_limited_total",
            "Requests refused for rate limiting, by who refused them (temporal or rpc).",
            ["source"],
            registry=registry,
        )
        # Scheduling
        self.blocks_scheduled = Counter(
            "tindexer_blocks_scheduled_total",
            "Blocks covered by IndexRange workflows the indexer started, by scheduling mode.",
            ["chain", "mode"],
            registry=registry,
        )
        self.workflows_started = Counter(
            "tindexer_workflows_started_total",
            "Workflows started by the indexer, by workflow type.",
            ["chain", "workflow"],
            registry=registry,
        )
        self.workflow_start_failures = Counter(
            "tindexer_workflow_start_failures_total",
            "Workflow starts that failed after the client's own retries, by reason.",
            ["chain", "reason"],
            registry=registry,
        )
        self.scheduler_parallelism = Gauge(
            "tindexer_scheduler_parallelism",
            "Size of the worker pool that starts IndexRange workflows.",
            ["chain"],
            registry=registry,
        )
        # Progress
        self.blocks_indexed = Counter(
            "tindexer_blocks_indexed_total",
            "Blocks written to PostgreSQL by IndexRange activities (re-writes included).",
            ["chain"],
            registry=registry,
        )
        self.reorgs = Counter(
            "tindexer_reorgs_total",
            "Chain reorganisations detected and repaired near the head.",
            ["chain"],
            registry=registry,
        )
        self.reorg_depth = Histogram(
            "tindexer_reorg_depth",
            "Depth in blocks of each repaired reorganisation.",
            ["chain"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=registry,
        )
        self.index_range_duration = Histogram(
            "tindexer_index_range_duration_seconds",
            "Time an IndexRange activity spends per phase (fetch from RPC, store to PostgreSQL).",
            ["chain", "phase"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The process-wide metrics on prometheus_client's default registry."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default
