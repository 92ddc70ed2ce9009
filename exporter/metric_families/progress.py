"""Progress: head, coverage, gaps and ETA per chain; rows indexed; reorgs and finality; the
IndexRange activity's phases."""

from __future__ import annotations

from exporter.metric_families.base import LATENCY_BUCKETS, Families


class ProgressFamilies(Families):
    """The progress families."""

    def declare(self) -> None:
        self.chain_head = self._gauge(
            "tindexer_chain_head",
            "Latest available block of the chain (head-1 rule applied).",
            ["chain"],
        )
        self.chain_last_indexed = self._gauge(
            "tindexer_chain_last_indexed",
            "Newest block stored for the chain with every enabled dataset.",
            ["chain"],
        )
        self.chain_missing_blocks = self._gauge(
            "tindexer_chain_missing_blocks",
            "Blocks between the chain's first block and its head not yet stored with every"
            " enabled dataset.",
            ["chain"],
        )
        self.chain_gap_ranges = self._gauge(
            "tindexer_chain_gap_ranges",
            "Contiguous runs of missing blocks between the first block and the head.",
            ["chain"],
        )
        self.chain_live_sync = self._gauge(
            "tindexer_chain_live_sync",
            "Whether the newest stored block is within live_sync_lag of the head (1) or not (0).",
            ["chain"],
        )
        self.backfill_eta = self._gauge(
            "tindexer_backfill_eta_seconds",
            "Estimated seconds until no block is missing, at the recent indexing rate.",
            ["chain"],
        )
        self.blocks_indexed = self._counter(
            "tindexer_blocks_indexed_total",
            "Blocks written to PostgreSQL by IndexRange activities and by the head scan's live"
            " edge.",
            ["chain"],
        )
        self.live_edge_blocks = self._counter(
            "tindexer_live_edge_blocks_total",
            "Blocks the head scan indexed itself at the live edge, without an IndexRange"
            " workflow (also in tindexer_blocks_indexed_total).",
            ["chain"],
        )
        self.rows_indexed = self._counter(
            "tindexer_rows_indexed_total",
            "Rows IndexRange activities stored for blocks that lacked them, by dataset: blocks,"
            " transactions, receipts (transactions with their receipt) and logs.",
            ["chain", "dataset"],
        )
        self.dataset_missing_blocks = self._gauge(
            "tindexer_dataset_missing_blocks",
            "Blocks between the chain's first block and its head whose rows of an enabled"
            " dataset are not stored yet.",
            ["chain", "dataset"],
        )
        self.reorgs = self._counter(
            "tindexer_reorgs_total",
            "Chain reorganisations detected and repaired near the head.",
            ["chain"],
        )
        self.reorg_depth = self._histogram(
            "tindexer_reorg_depth",
            "Depth in blocks of each repaired reorganisation.",
            ["chain"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.fork_too_deep = self._gauge(
            "tindexer_chain_fork_too_deep",
            "Whether the last reorg check found a fork deeper than max_reorg_depth (1), which"
            " stops the chain with nothing deleted, or none (0).",
            ["chain"],
        )
        self.head_regressions = self._counter(
            "tindexer_rpc_head_regressions_total",
            "Head scans in which the provider's latest block was below the chain's head (the"
            " highest it answered before): a lagging or resyncing node, never a reorg.",
            ["chain"],
        )
        self.finalized_block = self._gauge(
            "tindexer_chain_finalized_block",
            "The chain's final block at the last reorg check (its finality knob: the node's"
            " finalized or safe block, or head minus a depth): reorg checks stop above it.",
            ["chain"],
        )
        self.fork_below_finality = self._gauge(
            "tindexer_chain_fork_below_finality",
            "Whether the last reorg check found stored blocks that differ from the provider's"
            " at or below the final block (1), which stops the chain with nothing deleted, or"
            " none (0).",
            ["chain"],
        )
        self.forks_below_finality = self._counter(
            "tindexer_forks_below_finality_total",
            "Reorg checks that found stored blocks differing from the provider's at or below"
            " the final block: alerted, never repaired.",
            ["chain"],
        )
        self.head_lag = self._gauge(
            "tindexer_rpc_head_lag_blocks",
            "Blocks the provider's latest block was below the chain's head at the last head scan.",
            ["chain"],
        )
        self.index_range_duration = self._histogram(
            "tindexer_index_range_duration_seconds",
            "Time an IndexRange activity spends per phase (fetch from RPC, store to PostgreSQL).",
            ["chain", "phase"],
            buckets=LATENCY_BUCKETS,
        )
