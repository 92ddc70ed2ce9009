"""promtool cases for alerts/groups/progress.py."""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite

J = 'job="tindexer",instance="w1:9464"'


def stalled(chain: str, missing: str) -> Fires:
    return Fires(
        {"chain": chain, "severity": "critical"},
        "Blocks are missing but the indexer has stopped scheduling them.",
        f"Chain {chain} has {missing} blocks missing and no block was scheduled or indexed at the"
        " live edge in the last 15m.",
        "tindexerschedulingstalled",
    )


LIVE_SYNC_LOST = Fires(
    {"chain": "main", "severity": "critical"},
    "A chain's newest indexed block is further behind its head than allowed.",
    "Chain main is 200 blocks behind its head, beyond its live_sync_lag, for 15m.",
    "tindexerlivesynclost",
)
BACKLOG = Fires(
    {"chain": "main", "severity": "warning"},
    "A chain's backfill backlog has stopped shrinking.",
    "Chain main has 54k blocks missing, no fewer than 1h before.",
    "tindexerbacklognotshrinking",
)
GAPS = Fires(
    {"chain": "main", "severity": "warning"},
    "Blocks below the newest indexed block have been missing for too long.",
    "Chain main has had 2 gap ranges below its newest indexed block for 2h, and they are not"
    " shrinking.",
    "tindexergapspresent",
)


def dataset_behind(chain: str, dataset: str, behind: str) -> Fires:
    return Fires(
        {"chain": chain, "dataset": dataset, "severity": "warning"},
        "A dataset is behind a chain's blocks and not catching up.",
        f"Chain {chain} has {behind} stored blocks without their {dataset}, and that dataset's"
        " backlog is no smaller than 1h before.",
        "tindexerdatasetbehind",
    )


def deep_reorg(chain: str) -> Fires:
    return Fires(
        {"chain": chain, "severity": "warning"},
        "A chain reorganisation deeper than usual was repaired.",
        f"Chain {chain} had 1 reorgs deeper than 8 blocks in the last 1h.",
        "tindexerdeepreorg",
    )


SUITE = Suite(
    "progress",
    (
        Scenario(
            "main stops scheduling at 10m; fresh never scheduled anything; side keeps going",
            (
                (f'tindexer_chain_missing_blocks{{{J},chain="main"}}', "5000x40"),
                (
                    f'tindexer_blocks_scheduled_total{{{J},chain="main",mode="scheduler"}}',
                    "0+100x10 1000x30",
                ),
                (f'tindexer_chain_missing_blocks{{{J},chain="fresh"}}', "300x40"),
                (f'tindexer_chain_missing_blocks{{{J},chain="side"}}', "5000x40"),
                (
                    f'tindexer_blocks_scheduled_total{{{J},chain="side",mode="scheduler"}}',
                    "0+100x40",
                ),
            ),
            (
                Check("20m", "TindexerSchedulingStalled", (stalled("fresh", "300"),)),
                Check(
                    "32m",
                    "TindexerSchedulingStalled",
                    (stalled("fresh", "300"), stalled("main", "5k")),
                ),
            ),
        ),
        Scenario(
            "a live chain with nothing missing does not need scheduling",
            (
                (f'tindexer_chain_missing_blocks{{{J},chain="main"}}', "0x40"),
                (
                    f'tindexer_blocks_scheduled_total{{{J},chain="main",mode="direct"}}',
                    "500x40",
                ),
            ),
            (Check("35m", "TindexerSchedulingStalled"),),
        ),
        Scenario(
            "a live chain followed by its live edge schedules nothing, a new block always missing",
            (
                (f'tindexer_chain_missing_blocks{{{J},chain="main"}}', "1x40"),
                (
                    f'tindexer_blocks_scheduled_total{{{J},chain="main",mode="direct"}}',
                    "500x40",
                ),
                (f'tindexer_live_edge_blocks_total{{{J},chain="main"}}', "0+60x40"),
            ),
            (Check("35m", "TindexerSchedulingStalled"),),
        ),
        Scenario(
            "main loses live sync at 6m; slow is far behind but within its own live_sync_lag",
            (
                (f'tindexer_chain_head{{{J},chain="main"}}', "1000+10x30"),
                (f'tindexer_chain_last_indexed{{{J},chain="main"}}', "1000+10x5 1050x25"),
                (f'tindexer_chain_live_sync{{{J},chain="main"}}', "1x5 0x25"),
                (f'tindexer_chain_head{{{J},chain="slow"}}', "5000x30"),
                (f'tindexer_chain_last_indexed{{{J},chain="slow"}}', "4500x30"),
                (f'tindexer_chain_live_sync{{{J},chain="slow"}}', "1x30"),
            ),
            (
                Check("15m", "TindexerLiveSyncLost"),  # behind for 9m: pending
                Check("25m", "TindexerLiveSyncLost", (LIVE_SYNC_LOST,)),
            ),
        ),
        Scenario(
            "main's backlog grows; side's shrinks; tiny's is flat but small",
            (
                (f'tindexer_chain_missing_blocks{{{J},chain="main"}}', "50000+100x120"),
                (f'tindexer_chain_missing_blocks{{{J},chain="side"}}', "90000-500x120"),
                (f'tindexer_chain_missing_blocks{{{J},chain="tiny"}}', "500x120"),
            ),
            (
                Check("20m", "TindexerBacklogNotShrinking"),
                Check("40m", "TindexerBacklogNotShrinking", (BACKLOG,)),
            ),
        ),
        Scenario(
            "main has holes below its newest block that do not shrink; side's shrink; tail is "
            "only the live edge's lag",
            (
                (f'tindexer_chain_head{{{J},chain="main"}}', "1000x140"),
                (f'tindexer_chain_last_indexed{{{J},chain="main"}}', "1000x140"),
                (f'tindexer_chain_missing_blocks{{{J},chain="main"}}', "40x140"),
                (f'tindexer_chain_gap_ranges{{{J},chain="main"}}', "2x140"),
                (f'tindexer_chain_head{{{J},chain="side"}}', "1000x140"),
                (f'tindexer_chain_last_indexed{{{J},chain="side"}}', "1000x140"),
                (f'tindexer_chain_missing_blocks{{{J},chain="side"}}', "1000-5x140"),
                (f'tindexer_chain_gap_ranges{{{J},chain="side"}}', "1x140"),
                (f'tindexer_chain_head{{{J},chain="tail"}}', "1000+1x140"),
                (f'tindexer_chain_last_indexed{{{J},chain="tail"}}', "998+1x140"),
                (f'tindexer_chain_missing_blocks{{{J},chain="tail"}}', "2x140"),
                (f'tindexer_chain_gap_ranges{{{J},chain="tail"}}', "1x140"),
            ),
            (
                Check("1h", "TindexerGapsPresent"),
                Check("2h10m", "TindexerGapsPresent", (GAPS,)),
            ),
        ),
        Scenario(
            "main's logs stopped filling in 5,000 blocks behind its live blocks; side's are "
            "filling in; done's are caught up; receipts of main are caught up",
            (
                (f'tindexer_dataset_missing_blocks{{{J},chain="main",dataset="blocks"}}', "2x120"),
                (f'tindexer_dataset_missing_blocks{{{J},chain="main",dataset="logs"}}', "5002x120"),
                (
                    f'tindexer_dataset_missing_blocks{{{J},chain="main",dataset="receipts"}}',
                    "2x120",
                ),
                (f'tindexer_dataset_missing_blocks{{{J},chain="side",dataset="blocks"}}', "2x120"),
                (
                    f'tindexer_dataset_missing_blocks{{{J},chain="side",dataset="logs"}}',
                    "90002-500x120",
                ),
                (f'tindexer_dataset_missing_blocks{{{J},chain="done",dataset="blocks"}}', "2x120"),
                (f'tindexer_dataset_missing_blocks{{{J},chain="done",dataset="logs"}}', "2x120"),
            ),
            (
                Check("20m", "TindexerDatasetBehind"),  # pending: behind for under 30m
                Check("40m", "TindexerDatasetBehind", (dataset_behind("main", "logs", "5k"),)),
            ),
        ),
        Scenario(
            "a chain whose blocks are still being backfilled: its logs lag no further than them",
            (
                (
                    f'tindexer_dataset_missing_blocks{{{J},chain="main",dataset="blocks"}}',
                    "50000x120",
                ),
                (
                    f'tindexer_dataset_missing_blocks{{{J},chain="main",dataset="logs"}}',
                    "50000x120",
                ),
            ),
            (Check("90m", "TindexerDatasetBehind"),),
        ),
        Scenario(
            "main's reorg at 11m is deeper than 8 blocks; an hour later it no longer counts",
            (
                (f'tindexer_reorg_depth_count{{{J},chain="main"}}', "1x10 2x70"),
                (f'tindexer_reorg_depth_bucket{{{J},chain="main",le="8.0"}}', "1x80"),
            ),
            (
                Check("70m", "TindexerDeepReorg", (deep_reorg("main"),)),
                Check("75m", "TindexerDeepReorg"),
            ),
        ),
        Scenario(
            "the first reorg after a restart creates the series: a deep one on new fires, a "
            "shallow one on old does not",
            (
                (f'tindexer_reorg_depth_count{{{J},chain="new"}}', "_x20 1x40"),
                (f'tindexer_reorg_depth_bucket{{{J},chain="new",le="8.0"}}', "_x20 0x40"),
                (f'tindexer_reorg_depth_count{{{J},chain="old"}}', "_x20 1x40"),
                (f'tindexer_reorg_depth_bucket{{{J},chain="old",le="8.0"}}', "_x20 1x40"),
            ),
            (Check("25m", "TindexerDeepReorg", (deep_reorg("new"),)),),
        ),
    ),
)
