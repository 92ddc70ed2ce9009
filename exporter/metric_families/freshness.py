"""Freshness: how long after a block appeared at the head it was queryable with every dataset."""

from __future__ import annotations

from exporter.metric_families.base import Families

# 0.1 s resolves a fast L2's (0.25 s blocks) live edge; 60 s is where a block is plainly late.
# Each chain's objective (2 x its block time + 2 s by default) is rounded down to one of these
# bounds, so the SLO reads the bucket itself: 1 s blocks -> 4, 0.25 s -> 2.5, 2 s -> 6, 12 s
# (mainnet) -> 26. Kept short: every bound is a series per chain and histogram, so the two
# histograms and the objective cost 2 x (16 bounds + +Inf + _sum + _count) + 1 = 39 series per
# chain that has stored a block seen at the head.
FRESHNESS_BUCKETS = (0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15, 26, 60)


class FreshnessFamilies(Families):
    """The freshness SLI and its per-chain objective."""

    def declare(self) -> None:
        self.block_freshness = self._histogram(
            "tindexer_block_freshness_seconds",
            "Time from the head scan that first saw a block to the commit that stored it with"
            " every enabled dataset (blocks first seen by a head scan only, not backfill).",
            ["chain"],
            buckets=FRESHNESS_BUCKETS,
        )
        self.block_age_at_commit = self._histogram(
            "tindexer_block_age_at_commit_seconds",
            "Time from a block's own timestamp to the commit that stored it with every enabled"
            " dataset, for the blocks of tindexer_block_freshness_seconds (whole seconds: the"
            " timestamp has no fraction).",
            ["chain"],
            buckets=FRESHNESS_BUCKETS,
        )
        self.freshness_objective = self._gauge(
            "tindexer_block_freshness_objective_ratio",
            "Share of a chain's blocks that must be fresh within the bucket bound `le` of"
            " tindexer_block_freshness_seconds (its freshness objective rounded down to a bound).",
            ["chain", "le"],
        )
