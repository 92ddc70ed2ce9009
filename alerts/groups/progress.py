"""Is every chain live and its backlog shrinking: scheduling, live sync, backlog, gaps, datasets
behind the blocks, reorgs."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, needs, selector


def group(config: AlertConfig) -> Group:
    s = selector(config.job_selector)
    missing = f"max by (chain) (tindexer_chain_missing_blocks{s})"
    # Blocks missing below the newest indexed one: the backlog without the live edge's tail.
    holes = (
        f"max by (chain) (tindexer_chain_missing_blocks{s}"
        f" - (tindexer_chain_head{s} - tindexer_chain_last_indexed{s}))"
    )
    # Blocks handed to IndexRange workflows, or indexed by the head scan's live edge (which
    # schedules nothing): either keeps a chain moving.
    moving = selector(
        config.job_selector,
        '__name__=~"tindexer_blocks_scheduled_total|tindexer_live_edge_blocks_total"',
    )
    scheduled = f"sum by (chain) (increase({moving}[{config.scheduling_stalled_window}]))"
    not_blocks = selector(config.job_selector, 'dataset!="blocks"')
    only_blocks = selector(config.job_selector, 'dataset="blocks"')
    dataset_missing = f"tindexer_dataset_missing_blocks{not_blocks}"
    blocks_missing = f"tindexer_dataset_missing_blocks{only_blocks}"
    count = f"tindexer_reorg_depth_count{s}"
    shallow = f"tindexer_reorg_depth_bucket{selector(config.job_selector, deep_le(config))}"
    window = config.deep_reorg_window
    return Group(
        "tindexer-progress",
        (
            Alert(
                name="TindexerSchedulingStalled",
                # A chain that never scheduled anything has no counter yet: count it as zero.
                expr=(
                    f"{missing} > 0\n"
                    f"and on (chain)\n"
                    f"(\n  {scheduled}\n  or on (chain)\n  0 * {missing}\n) == 0"
                ),
                for_=config.scheduling_stalled_for,
                severity="critical",
                summary="Blocks are missing but the indexer has stopped scheduling them.",
                description=(
                    "Chain {{ $labels.chain }} has {{ $value | humanize }} blocks missing and "
                    "no block was scheduled or indexed at the live edge in the last "
                    f"{config.scheduling_stalled_window}."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
            Alert(
                name="TindexerLiveSyncLost",
                expr=(
                    f"max by (chain) (tindexer_chain_head{s} - tindexer_chain_last_indexed{s})\n"
                    f"and on (chain)\n"
                    f"max by (chain) (tindexer_chain_live_sync{s}) == 0"
                ),
                for_=config.live_sync_lost_for,
                severity="critical",
                summary="A chain's newest indexed block is further behind its head than allowed.",
                description=(
                    "Chain {{ $labels.chain }} is {{ $value | humanize }} blocks behind its head, "
                    f"beyond its live_sync_lag, for {config.live_sync_lost_for}."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
            Alert(
                name="TindexerBacklogNotShrinking",
                expr=(
                    f"{missing} > {config.backlog_min_blocks}\n"
                    f"and on (chain)\n"
                    f"max by (chain) (delta(tindexer_chain_missing_blocks{s}"
                    f"[{config.backlog_window}])) >= 0"
                ),
                for_=config.backlog_not_shrinking_for,
                severity="warning",
                summary="A chain's backfill backlog has stopped shrinking.",
                description=(
                    "Chain {{ $labels.chain }} has {{ $value | humanize }} blocks missing, no "
                    f"fewer than {config.backlog_window} before."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
            Alert(
                name="TindexerGapsPresent",
                expr=(
                    f"max by (chain) (tindexer_chain_gap_ranges{s})\n"
                    f"and on (chain)\n"
                    f"{holes} > 0\n"
                    f"and on (chain)\n"
                    f"max by (chain) (deriv(tindexer_chain_missing_blocks{s}"
                    f"[{config.gaps_window}])) >= 0"
                ),
                for_=config.gaps_for,
                severity="warning",
                summary="Blocks below the newest indexed block have been missing for too long.",
                description=(
                    "Chain {{ $labels.chain }} has had {{ $value | humanize }} gap ranges below "
                    f"its newest indexed block for {config.gaps_for}, and they are not shrinking."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
            Alert(
                name="TindexerDatasetBehind",
                # Blocks stored without the dataset's rows, while its backlog is not shrinking.
                expr=(
                    f"(\n"
                    f"  max by (chain, dataset) ({dataset_missing})\n"
                    f"  - on (chain) group_left ()\n"
                    f"  max by (chain) ({blocks_missing})\n"
                    f") > 0\n"
                    f"and on (chain, dataset)\n"
                    f"max by (chain, dataset) (delta({dataset_missing}"
                    f"[{config.dataset_behind_window}])) >= 0"
                ),
                for_=config.dataset_behind_for,
                severity="warning",
                summary="A dataset is behind a chain's blocks and not catching up.",
                description=(
                    "Chain {{ $labels.chain }} has {{ $value | humanize }} stored blocks without "
                    "their {{ $labels.dataset }}, and that dataset's backlog is no smaller than "
                    f"{config.dataset_behind_window} before."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
            Alert(
                name="TindexerDeepReorg",
                # A chain's first reorg creates its series: count a series that is new within
                # the window too, or the first deep reorg after a restart goes unnoticed.
                expr=(
                    f"(\n"
                    f"  sum by (chain) (increase({count}[{window}]))\n"
                    f"  - sum by (chain) (increase({shallow}[{window}]))\n"
                    f") > 0\n"
                    f"or\n"
                    f"(\n"
                    f"  sum by (chain) ({count} unless {count} offset {window})\n"
                    f"  - sum by (chain) ({shallow} unless {shallow} offset {window})\n"
                    f") > 0"
                ),
                for_="0m",
                severity="warning",
                summary="A chain reorganisation deeper than usual was repaired.",
                description=(
                    "Chain {{ $labels.chain }} had {{ $value | humanize }} reorgs deeper than "
                    f"{config.deep_reorg_blocks} blocks in the last {window}."
                ),
            ),
        ),
    )


def deep_le(config: AlertConfig) -> str:
    """The `le` matcher of the deep-reorg threshold bucket ("8" or "8.0", as clients write it)."""
    return f'le=~"{config.deep_reorg_blocks}(\\\\.0)?"'
