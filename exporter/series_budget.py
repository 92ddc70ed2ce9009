"""How many series a chain adds to /metrics: the budget docs/metrics.md states and
tests/unit/test_series_budget.py holds, counted as the page shows them (no `_created`).

A chain's series are what a running chain records: its counters created at zero
(`Metrics.touch_chain`), progress and head gauges, the IndexRange phase and scheduling
histograms, one start-failure reason, the autoscaler's gauges; each provider adds its own
(`Metrics.touch_provider`, requests by method and outcome, one latency histogram, head and
circuit gauges); each enabled dataset two (rows indexed, blocks missing). 100 chains with one
provider and four datasets may hold `budget(100)` = 19,120 series (17,725 counted today).
"""

from __future__ import annotations

# Counted today (tests/unit/test_series_budget.py prints them): a chain 129 (88, plus 39 for
# the freshness SLI's two 16-bucket histograms and its objective, plus 2 live-edge counters),
# a provider 37, a dataset 2, a process 294. The chain's budget leaves room for one small
# histogram; past that, a family is a decision.
SERIES_PER_CHAIN = 140
SERIES_PER_PROVIDER = 40
SERIES_PER_DATASET = 2
# Whatever the chains: activities by outcome, the indexer's queries, task queues, PostgreSQL
# health, the collectors. The Temporal SDK's `temporal_*` families come on top (a few hundred).
FIXED_SERIES = 320


def budget(chains: int, providers: int = 1, datasets: int = 4) -> int:
    """Series /metrics may hold for `chains` chains, each with `providers` and `datasets`."""
    per_chain = SERIES_PER_CHAIN + providers * SERIES_PER_PROVIDER + datasets * SERIES_PER_DATASET
    return FIXED_SERIES + chains * per_chain
