"""Per-chain series (issue 12, item 9): counters of a new chain start at zero, a gone chain's go."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from temporalio.service import RPCStatusCode

from exporter.metrics import WORKFLOW_START_FAILURE_REASONS, Metrics
from indexer.temporal_client import INDEX_RANGE, SCHEDULER


def chain_samples(registry: CollectorRegistry, chain: str) -> list[tuple[str, float]]:
    return sorted(
        (sample.name, sample.value)
        for family in registry.collect()
        for sample in family.samples
        if sample.labels.get("chain") == chain and not sample.name.endswith("_created")
    )


def test_reasons_are_every_status_a_start_can_fail_with() -> None:
    """The scheduling activity labels a failure with the RPC status name, rate limits apart."""
    skipped = {RPCStatusCode.OK, RPCStatusCode.RESOURCE_EXHAUSTED}
    names = {code.name.lower() for code in RPCStatusCode if code not in skipped}
    assert set(WORKFLOW_START_FAILURE_REASONS) == names


def test_touch_chain_creates_known_counters_at_zero() -> None:
    registry = CollectorRegistry()
    Metrics(registry).touch_chain("main")
    for workflow in (INDEX_RANGE, SCHEDULER):
        labels = {"chain": "main", "workflow": workflow}
        assert registry.get_sample_value("tindexer_workflows_started_total", labels) == 0
    labels = {"chain": "main"}
    assert registry.get_sample_value("tindexer_scheduler_continue_as_new_total", labels) == 0


def test_forget_chain_removes_every_series_of_that_chain_only() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for chain in ("main", "mainnet"):
        metrics.touch_chain(chain)
        metrics.chain_head.labels(chain).set(100)
        metrics.rpc_concurrency_limit.labels(chain, "default").set(16)
        metrics.replicas_desired.labels(chain).set(2)
        metrics.index_range_duration.labels(chain, "store").observe(0.1)
        metrics.workflow_start_failures.labels(chain, "unavailable").inc()
    kept = chain_samples(registry, "mainnet")
    metrics.forget_chain("main")
    assert chain_samples(registry, "main") == []
    assert chain_samples(registry, "mainnet") == kept
    assert registry.get_sample_value("tindexer_rate_limited_total", {"source": "rpc"}) == 0
    metrics.forget_chain("never-seen")  # nothing to remove is not an error
