"""Indexer overview: is every chain live, how big is the backlog, is scheduling keeping up."""

from __future__ import annotations

from alerts.config import CONFIG
from dashboards.common import (
    BYTES,
    COUNT,
    GREEN,
    PER_SECOND,
    PERCENT,
    RED,
    SECONDS,
    YELLOW,
    PerValue,
    Query,
    Rows,
    heatmap,
    stat,
    steps,
    timeseries,
    value_mappings,
)
from dashboards.queries import overview as q

TITLE = "Tindexer / Overview"
DESCRIPTION = (
    "Per chain: live sync, backlog and gaps, each dataset's progress, indexing and scheduling"
    " rates, SLOs, and per chain how fresh its new blocks are."
)
VARIABLES = ("chain",)

LIVE = value_mappings({0: ("behind", RED), 1: ("live", GREEN)})

ROWS: Rows = [
    (
        "Live sync",
        [
            stat(
                "Live sync",
                "Whether the newest indexed block is within the chain's live_sync_lag of its "
                "head (head-1 rule applied: one block behind the announced head is live).",
                COUNT,
                Query(q.LIVE_SYNC, "{{chain}}"),
                mappings=LIVE,
                thresholds=steps((RED, None), (GREEN, 1)),
            ),
            stat(
                "Blocks behind head",
                "Head minus the newest indexed block. Above live_sync_lag the chain is not live.",
                COUNT,
                Query(q.BLOCKS_BEHIND, "{{chain}}"),
                thresholds=steps((GREEN, None), (YELLOW, 5), (RED, 50)),
            ),
            timeseries(
                "Head vs last indexed",
                "The chain's latest available block and the newest block stored in PostgreSQL.",
                COUNT,
                Query(q.HEAD, "{{chain}} head"),
                Query(q.LAST_INDEXED, "{{chain}} last indexed"),
                width=16,
                height=5,
            ),
        ],
    ),
    (
        PerValue("Freshness: $chain", "chain"),
        [
            timeseries(
                "Freshness p50 / p99",
                "Seconds from the head scan that first saw a block to the commit that made it "
                "queryable with every dataset (first seen), and from the block's own timestamp "
                "(block age, which adds the time until a head scan saw it). Blocks seen "
                "appearing at the head only, never a backfill's.",
                SECONDS,
                Query(q.FRESHNESS_P50, "{{chain}} p50 first seen"),
                Query(q.FRESHNESS_P99, "{{chain}} p99 first seen"),
                Query(q.AGE_AT_COMMIT_P50, "{{chain}} p50 block age"),
                Query(q.AGE_AT_COMMIT_P99, "{{chain}} p99 block age"),
            ),
            heatmap(
                "Freshness distribution",
                "Blocks stored per interval by freshness bucket (seconds from first seen to "
                "commit): a band moving up is a slower stage, a few high cells are a tail.",
                SECONDS,
                Query(q.FRESHNESS_HEATMAP, "{{le}}"),
            ),
            stat(
                "Fresh within objective (1h)",
                "Share of the last hour's new blocks stored within the chain's freshness "
                "objective (freshness_objective_seconds, default 2 block times + 2 s); its "
                "freshness_target (default 99 %) is the SLO.",
                PERCENT,
                Query(q.FRESH_WITHIN_OBJECTIVE_1H, "{{chain}}"),
                thresholds=steps((RED, None), (YELLOW, 0.95), (GREEN, 0.99)),
                height=8,
            ),
            stat(
                "Blocks seen at the head per second",
                "New blocks a head scan saw appear and a commit stored: what the freshness "
                "percentiles are computed over.",
                PER_SECOND,
                Query(q.BLOCKS_SEEN_AT_HEAD_RATE, "{{chain}}"),
                height=8,
            ),
        ],
    ),
    (
        "Backlog",
        [
            stat(
                "Missing blocks",
                "Blocks between the chain's first block and its head that are not stored yet.",
                COUNT,
                Query(q.MISSING_BLOCKS, "{{chain}}"),
                thresholds=steps((GREEN, None), (YELLOW, 1), (RED, CONFIG.backlog_min_blocks)),
            ),
            stat(
                "Gap ranges",
                "Contiguous runs of missing blocks; the live edge's own lag counts as one.",
                COUNT,
                Query(q.GAP_RANGES, "{{chain}}"),
                thresholds=steps((GREEN, None), (YELLOW, 2)),
            ),
            stat(
                "Backfill ETA",
                "Seconds until no block is missing, at the recent indexing rate.",
                SECONDS,
                Query(q.BACKFILL_ETA, "{{chain}}"),
                thresholds=steps((GREEN, None), (YELLOW, 3600), (RED, 86_400)),
            ),
            timeseries(
                "Blocks indexed per second",
                "Blocks written to PostgreSQL by IndexRange activities, per second.",
                PER_SECOND,
                Query(q.BLOCKS_INDEXED_RATE, "{{chain}}"),
                width=12,
                height=5,
            ),
            timeseries(
                "Missing blocks over time",
                "A shrinking line is a backfill making headway; a flat or growing one is not.",
                COUNT,
                Query(q.MISSING_BLOCKS, "{{chain}} missing"),
                Query(q.GAP_RANGES, "{{chain}} gap ranges"),
                width=12,
            ),
            timeseries(
                "Reorgs since start",
                "Reorganisations detected and repaired near the head since the indexer "
                "started, and the deepest one's depth in blocks (its bucket's upper bound).",
                COUNT,
                Query(q.REORGS, "{{chain}} reorgs"),
                Query(q.REORG_DEPTH_MAX, "{{chain}} max depth"),
                width=12,
            ),
        ],
    ),
    (
        "Datasets",
        [
            timeseries(
                "Rows indexed per second by dataset",
                "Rows stored for blocks that lacked them, by dataset: blocks, transactions, "
                "receipts (transactions stored with their receipt) and logs.",
                PER_SECOND,
                Query(q.ROWS_INDEXED_RATE, "{{chain}} {{dataset}}"),
                width=12,
            ),
            timeseries(
                "Backlog by dataset",
                "Blocks from the first block to the head without a dataset's rows, for each "
                "enabled dataset. A dataset added to an indexed chain starts with every block "
                "missing and is filled in by the same range workflows.",
                COUNT,
                Query(q.DATASET_MISSING, "{{chain}} {{dataset}}"),
                width=12,
            ),
            timeseries(
                "Datasets behind the blocks",
                "Blocks stored without a dataset's rows: 0 when the dataset is caught up. A "
                "line that does not fall is a dataset whose ranges fail (see "
                "TindexerDatasetBehind).",
                COUNT,
                Query(q.DATASET_BEHIND, "{{chain}} {{dataset}}"),
                thresholds=steps((GREEN, None), (YELLOW, 1)),
                width=12,
            ),
            timeseries(
                "RPC requests per second by method",
                "JSON-RPC HTTP requests to the chain's provider by method: blocks "
                "(eth_getBlockByNumber), receipts (eth_getBlockReceipts, or "
                "eth_getTransactionReceipt from a provider without it) and the head.",
                PER_SECOND,
                Query(q.RPC_REQUESTS_BY_METHOD, "{{chain}} {{method}}"),
                width=12,
            ),
        ],
    ),
    (
        "Worker memory",
        [
            timeseries(
                "Bytes in flight",
                "JSON-RPC answer bytes each worker holds (batches being fetched or waiting to be"
                " stored) against its memory budget; a batch larger than the budget runs alone.",
                BYTES,
                Query(q.WORKER_IN_FLIGHT, "{{instance}} in flight"),
                Query(q.WORKER_BUDGET, "{{instance}} budget"),
                width=12,
            ),
            timeseries(
                "Time waiting for budget",
                "Batch-seconds per second spent waiting for room in each worker's budget: 1"
                " means one batch waiting at every moment. Sustained, the budget bounds"
                " throughput (alert TindexerWorkerAtMemoryBudget).",
                SECONDS,
                Query(q.WORKER_BUDGET_WAIT, "{{instance}}"),
                width=12,
            ),
        ],
    ),
    (
        "Scheduling",
        [
            timeseries(
                "Blocks scheduled per second",
                "Blocks covered by IndexRange workflows started, by mode: direct (small "
                "backlogs and the live edge, newest first) or the Scheduler workflow.",
                PER_SECOND,
                Query(q.BLOCKS_SCHEDULED_RATE, "{{chain}} {{mode}}"),
            ),
            timeseries(
                "Workflows started per second",
                "New workflow runs started by the indexer, by workflow type.",
                PER_SECOND,
                Query(q.WORKFLOWS_STARTED_RATE, "{{chain}} {{workflow}}"),
            ),
            timeseries(
                "In-flight ranges",
                "IndexRange workflows started and not yet finished (capped by "
                "max_inflight_ranges), and the start pool's parallelism.",
                COUNT,
                Query(q.INFLIGHT_RANGES, "{{chain}} in flight"),
                Query(q.SCHEDULER_PARALLELISM, "{{chain}} parallelism"),
            ),
            timeseries(
                "Workflow start failures per second",
                "Starts Temporal refused after the SDK's own retries, by reason; the scheduler "
                "retries them. Any is worth a look.",
                PER_SECOND,
                Query(q.START_FAILURES_RATE, "{{chain}} {{reason}}"),
                thresholds=steps((GREEN, None), (RED, 0.001)),
                links=(("Temporal server: which service refuses, and why", "temporal_server"),),
            ),
            timeseries(
                "Schedule batch duration p95",
                "Time to start one batch of IndexRange workflows through the start pool.",
                SECONDS,
                Query(q.SCHEDULE_BATCH_P95, "{{chain}}"),
            ),
            timeseries(
                "Scheduler continue-as-new",
                "Times a Scheduler workflow continued as new after continue_as_new_threshold "
                "starts, per interval.",
                COUNT,
                Query(q.CONTINUE_AS_NEW, "{{chain}}"),
            ),
        ],
    ),
    (
        "SLOs and error budget",
        [
            stat(
                f"Live-sync error budget left ({q.PERIOD})",
                f"Share of the {q.PERIOD} error budget of the live-sync SLO not yet spent: the "
                "time out of live sync allowed by the target, minus the time spent out of it.",
                PERCENT,
                Query(q.LIVE_SYNC_BUDGET, "{{chain}}"),
                thresholds=steps((RED, None), (YELLOW, 0.25), (GREEN, 0.5)),
                width=6,
                height=6,
            ),
            stat(
                f"RPC error budget left ({q.PERIOD})",
                f"Share of the {q.PERIOD} error budget of the RPC success SLO not yet spent.",
                PERCENT,
                Query(q.RPC_BUDGET, "{{chain}}"),
                thresholds=steps((RED, None), (YELLOW, 0.25), (GREEN, 0.5)),
                width=6,
                height=6,
            ),
            stat(
                f"Freshness error budget left ({q.PERIOD})",
                f"Share of the {q.PERIOD} error budget of the freshness SLO not yet spent: the "
                "new blocks allowed to be late by each chain's freshness_target, minus those "
                "that were.",
                PERCENT,
                Query(q.FRESHNESS_BUDGET, "{{chain}}"),
                thresholds=steps((RED, None), (YELLOW, 0.25), (GREEN, 0.5)),
                width=6,
                height=6,
            ),
            timeseries(
                "Error budget burn rate",
                "How many times faster than sustainable each SLO spends its budget over 1h and "
                "6h; the page thresholds are 14.4 (1h) and 6 (6h).",
                COUNT,
                Query(q.LIVE_SYNC_BURN_1H, "{{chain}} live sync 1h"),
                Query(q.LIVE_SYNC_BURN_6H, "{{chain}} live sync 6h"),
                Query(q.RPC_BURN_1H, "{{chain}} rpc 1h"),
                Query(q.RPC_BURN_6H, "{{chain}} rpc 6h"),
                Query(q.FRESHNESS_BURN_1H, "{{chain}} freshness 1h"),
                Query(q.FRESHNESS_BURN_6H, "{{chain}} freshness 6h"),
                thresholds=steps((GREEN, None), (YELLOW, 6), (RED, 14.4)),
                width=24,
                height=6,
            ),
        ],
    ),
]
