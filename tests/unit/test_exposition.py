"""The fast /metrics page (exporter/exposition.py) is prometheus_client's, minus `_created`."""

from __future__ import annotations

import math

import pytest
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    enable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.exposition import Renderer, wants_openmetrics
from exporter.metrics import Metrics
from exporter.series import go_float


def busy_registry() -> CollectorRegistry:
    """Every kind of family and sample the exporter shows, odd label values included."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.build_info.info({"version": '1.2 "rc"\\x'})
    for chain in ("main", "side"):
        metrics.touch_chain(chain)
        metrics.touch_provider(chain, "alchemy")
        metrics.rpc_request_duration.labels(chain, "alchemy").observe(0.03)
        metrics.chain_head.labels(chain).set(21_000_000)
        metrics.backfill_eta.labels(chain).set(1.5e17)
        metrics.rows_indexed.labels(chain, "logs").inc(123_456_789)
        metrics.index_range_duration.labels(chain, "fetch").observe(0.2, {"trace_id": "ab12"})
    metrics.collector_last_success.labels("progress").set(1_765_000_000.123)
    metrics.pg_cache_hit_ratio.set(math.nan)
    metrics.pg_lock_wait_oldest.set(-math.inf)
    metrics.pg_statement_calls.set(7, "1", 'SELECT "x"\nFROM y')
    metrics.pg_deadlocks.set(3)
    metrics.pg_probe_latency.observe(0.002)  # a histogram without labels
    Gauge("callback", "A gauge read when scraped.", registry=registry).set_function(lambda: 4.0)
    registry.set_target_info({"service": "tindexer"})
    return registry


@pytest.fixture
def without_created():  # type: ignore[no-untyped-def]
    disable_created_metrics()
    try:
        yield
    finally:
        enable_created_metrics()


def test_text_is_prometheus_clients_without_created(without_created: None) -> None:
    registry = busy_registry()
    renderer = Renderer(registry)
    assert renderer.text() == generate_latest(registry)
    assert renderer.text() == generate_latest(registry)  # from the cached prefixes too


def test_openmetrics_keeps_exemplars_and_is_prometheus_clients(without_created: None) -> None:
    registry = busy_registry()
    page = Renderer(registry).openmetrics()
    assert page == generate_openmetrics(registry)
    assert b'# {trace_id="ab12"} 0.2' in page


def test_no_created_series_even_when_the_library_makes_them() -> None:
    registry = busy_registry()
    assert b"_created" in generate_latest(registry)
    assert b"_created" not in Renderer(registry).text()
    assert b"_created" not in Renderer(registry).openmetrics()


def test_a_removed_series_leaves_the_page() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.touch_chain("gone")
    renderer = Renderer(registry)
    assert b'chain="gone"' in renderer.text()
    metrics.forget_chain("gone")
    assert b'chain="gone"' not in renderer.text()


@pytest.mark.parametrize(
    "value", [0, 1, -1, 0.5, 1e-7, 123456.0, 1234567.0, 1.5e17, math.inf, -math.inf, 2**53]
)
def test_numbers_are_written_as_go_writes_them(value: float) -> None:
    from prometheus_client.utils import floatToGoString

    assert go_float(value) == floatToGoString(value)


def test_openmetrics_only_when_asked_for_version_1() -> None:
    prometheus = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    assert wants_openmetrics(prometheus)
    assert wants_openmetrics("application/openmetrics-text")
    assert not wants_openmetrics("application/openmetrics-text;version=0.0.1,text/plain")
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics("")
