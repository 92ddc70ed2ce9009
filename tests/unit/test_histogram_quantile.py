"""The loadtest's p95 of a histogram summed over workers: PromQL's histogram_quantile rules."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from indexer.loadtest import _buckets, _p95_by_query, histogram_quantile

BUCKETS = (0.1, 0.5, 1.0)


def _worker(observations: dict[str, list[float]]) -> str:
    """One worker's exposition of a labelled histogram with these observations."""
    registry = CollectorRegistry()
    histogram = Histogram(
        "tindexer_pg_query_duration_seconds",
        "Query time.",
        ["query"],
        buckets=BUCKETS,
        registry=registry,
    )
    for query, values in observations.items():
        for value in values:
            histogram.labels(query).observe(value)
    return generate_latest(registry).decode()


def test_buckets_are_summed_over_workers_and_queries() -> None:
    texts = [
        _worker({"coverage": [0.05] * 30, "store_range": [0.3] * 40}),
        _worker({"coverage": [0.05] * 20, "reorg_window": [0.7] * 10}),
    ]
    buckets = _buckets(texts, "tindexer_pg_query_duration_seconds")
    assert buckets == {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    # rank 95 falls in (0.5, 1.0], which holds ranks 90..100: 0.5 + 0.5 * 5/10
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)  # rank 50: the top of (0, 0.1]


def test_within_the_first_bucket_the_lower_bound_is_zero() -> None:
    assert histogram_quantile(0.5, {0.1: 10.0, float("inf"): 10.0}) == pytest.approx(0.05)


def test_a_rank_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.95, {0.5: 10.0, 1.0: 20.0, float("inf"): 100.0}) == 1.0


def test_an_empty_histogram_has_no_quantile() -> None:
    assert histogram_quantile(0.95, {}) is None
    assert histogram_quantile(0.95, {0.1: 0.0, float("inf"): 0.0}) is None
    assert _buckets([], "tindexer_pg_query_duration_seconds") == {}


def test_p95_by_query_keeps_slow_copies_apart_from_fast_point_queries() -> None:
    texts = [
        _worker({"coverage": [0.05] * 19 + [0.3], "store_range": [0.8] * 4}),
        _worker({"coverage": [0.05] * 20}),
    ]
    by_query = _p95_by_query(texts)
    assert set(by_query) == {"coverage", "store_range"}
    assert by_query["coverage"] is not None and by_query["coverage"] < 0.1  # 39 of 40 fast
    assert by_query["store_range"] is not None and by_query["store_range"] > 0.5
