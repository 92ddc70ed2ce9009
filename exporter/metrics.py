"""Every metric the indexer exports, declared once. Labels stay bounded: never a block or hash.

The declarations live by area in `exporter/metric_families/` (scheduling, temporal, rpc,
progress, freshness, worker, postgres, collectors); `Metrics` inherits them all, so a family is
one attribute (`metrics.rpc_requests`) whatever its area. Each family's help text is one full
sentence, the unit in the name. Code that records a metric takes a `Metrics`; tests pass
`Metrics(CollectorRegistry())` and assert exact values with `registry.get_sample_value(...)`.
`docs/metrics.md` is generated from these declarations, in their order.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from exporter.metric_families.base import Declared, Families, ObservedCounter
from exporter.metric_families.collectors import CollectorFamilies
from exporter.metric_families.freshness import FreshnessFamilies
from exporter.metric_families.postgres import PostgresFamilies
from exporter.metric_families.progress import ProgressFamilies
from exporter.metric_families.rpc import RpcFamilies
from exporter.metric_families.scheduling import SchedulingFamilies
from exporter.metric_families.temporal import TemporalFamilies
from exporter.metric_families.worker import WorkerFamilies

__all__ = ["Declared", "Metrics", "ObservedCounter", "default_metrics"]

# What a JSON-RPC request can end in (chain/transport.py): every chain's counters start at zero.
RPC_OUTCOMES = ("ok", "rate_limited", "timeout", "too_large", "bad_data", "error")
# Reasons of tindexer_workflow_start_failures_total: Temporal's gRPC status names in lower case,
# but resource_exhausted (counted as rate limiting) and ok. Not created at zero: 15 series per
# chain that stay at zero; TindexerWorkflowStartFailures counts a new series as a failure.
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


class Metrics(
    SchedulingFamilies,
    TemporalFamilies,
    RpcFamilies,
    ProgressFamilies,
    FreshnessFamilies,
    WorkerFamilies,
    PostgresFamilies,
    CollectorFamilies,
):
    """The indexer's metric families: every area's, declared in the order of the bases (the
    order of docs/metrics.md). A new family goes into its area's `declare`."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.declared = []
        for area in Metrics.__bases__:
            if issubclass(area, Families):
                area.declare(self)

        # Every family labelled by chain, with its label names: what forget_chain clears.
        self._per_chain = [
            (entry.family, entry.labels)
            for entry in self.declared
            if isinstance(entry.family, MetricWrapperBase) and "chain" in entry.labels
        ]

    def touch_chain(self, chain: str) -> None:
        """Create a chain's counters at zero, so rate() and increase() see their first event."""
        self.reorgs.labels(chain)
        self.forks_below_finality.labels(chain)
        self.head_regressions.labels(chain)
        self.blocks_indexed.labels(chain)
        self.live_edge_blocks.labels(chain)
        self.head_scan_activities.labels(chain)
        for dataset in DATASETS:
            self.rows_indexed.labels(chain, dataset)
        self.scheduler_continue_as_new.labels(chain)
        for mode in ("direct", "scheduler"):
            self.blocks_scheduled.labels(chain, mode)
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
        for family, names in self._per_chain:
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
