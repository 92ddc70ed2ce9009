"""A chain's freshness objective, and the histogram bound the SLO reads it at."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from exporter.metric_families.freshness import FRESHNESS_BUCKETS
from exporter.metrics import Metrics
from indexer.config import ChainConfig
from indexer.freshness import Freshness, objective_bound

URL = "http://127.0.0.1:8545"


@pytest.mark.parametrize(
    ("block_time", "objective", "bound"),
    [(12, 26, 26), (1, 4, 4), (0.25, 2.5, 2.5), (2, 6, 6), (5, 12, 10), (0.01, 2.02, 2)],
)
def test_default_objective_is_two_block_times_plus_two_seconds_rounded_down_to_a_bound(
    block_time: float, objective: float, bound: float
) -> None:
    config = ChainConfig(name="c", rpc_url=URL, block_time_seconds=block_time)
    assert config.freshness_objective() == pytest.approx(objective)
    assert objective_bound(config.freshness_objective()) == bound
    assert bound in FRESHNESS_BUCKETS


def test_an_explicit_objective_wins_and_one_below_every_bound_reads_the_first() -> None:
    config = ChainConfig(name="c", rpc_url=URL, freshness_objective_seconds=7.5)
    assert config.freshness_objective() == 7.5 and objective_bound(7.5) == 6
    assert objective_bound(0.05) == FRESHNESS_BUCKETS[0]


def test_the_objective_is_exported_at_one_bound_per_chain_even_after_a_change() -> None:
    registry = CollectorRegistry()
    freshness = Freshness(None, Metrics(registry))  # type: ignore[arg-type]  # no query here
    name = "tindexer_block_freshness_objective_ratio"
    freshness._export_objective("c", ChainConfig(name="c", rpc_url=URL, block_time_seconds=1))
    assert registry.get_sample_value(name, {"chain": "c", "le": "4.0"}) == 0.99
    changed = ChainConfig(name="c", rpc_url=URL, block_time_seconds=12, freshness_target=0.95)
    freshness._export_objective("c", changed)
    assert registry.get_sample_value(name, {"chain": "c", "le": "4.0"}) is None
    assert registry.get_sample_value(name, {"chain": "c", "le": "26.0"}) == 0.95
