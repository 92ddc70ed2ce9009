"""PromQL for the Indexer overview dashboard: per chain, live sync, backlog, scheduling, SLOs."""

from __future__ import annotations

from alerts.config import CONFIG
from alerts.groups.slo import FRESHNESS_TARGET, freshness_slo, live_sync_slo, rpc_slo

C = '{chain=~"$chain"}'
MODE = 'mode=~".+"'

# --- Live sync ---------------------------------------------------------------------------------
LIVE_SYNC = f"max by (chain) (tindexer_chain_live_sync{C})"
HEAD = f"max by (chain) (tindexer_chain_head{C})"
LAST_INDEXED = f"max by (chain) (tindexer_chain_last_indexed{C})"
BLOCKS_BEHIND = f"max by (chain) (tindexer_chain_head{C} - tindexer_chain_last_indexed{C})"

# --- Backlog -----------------------------------------------------------------------------------
MISSING_BLOCKS = f"max by (chain) (tindexer_chain_missing_blocks{C})"
GAP_RANGES = f"max by (chain) (tindexer_chain_gap_ranges{C})"
BACKFILL_ETA = f"max by (chain) (tindexer_backfill_eta_seconds{C})"
BLOCKS_INDEXED_RATE = f"sum by (chain) (rate(tindexer_blocks_indexed_total{C}[$__rate_interval]))"
# Reorgs are rare: a chain's first one creates its series, which rate() cannot see. Show the
# counts since the process started instead, which always include it.
REORGS = f"max by (chain) (tindexer_reorgs_total{C})"
REORG_DEPTH_MAX = f"histogram_quantile(1, sum by (chain, le) (tindexer_reorg_depth_bucket{C}))"


# --- Freshness (one row per chain) -------------------------------------------------------------
def freshness_quantile(quantile: float, histogram: str) -> str:
    return (
        f"histogram_quantile({quantile}, sum by (chain, le) "
        f"(rate({histogram}_bucket{C}[$__rate_interval])))"
    )


FRESHNESS_P50 = freshness_quantile(0.5, "tindexer_block_freshness_seconds")
FRESHNESS_P99 = freshness_quantile(0.99, "tindexer_block_freshness_seconds")
AGE_AT_COMMIT_P50 = freshness_quantile(0.5, "tindexer_block_age_at_commit_seconds")
AGE_AT_COMMIT_P99 = freshness_quantile(0.99, "tindexer_block_age_at_commit_seconds")
FRESHNESS_HEATMAP = (
    f"sum by (le) (increase(tindexer_block_freshness_seconds_bucket{C}[$__rate_interval]))"
)
BLOCKS_SEEN_AT_HEAD_RATE = (
    f"sum by (chain) (rate(tindexer_block_freshness_seconds_count{C}[$__rate_interval]))"
)

# --- Datasets ----------------------------------------------------------------------------------
ROWS_INDEXED_RATE = (
    f"sum by (chain, dataset) (rate(tindexer_rows_indexed_total{C}[$__rate_interval]))"
)
DATASET_MISSING = f"max by (chain, dataset) (tindexer_dataset_missing_blocks{C})"
# Blocks stored without a dataset's rows: its backlog minus the blocks' own (same first block and
# head), so a dataset being filled in shows apart from the chain's backfill.
DATASET_BEHIND = (
    'max by (chain, dataset) (tindexer_dataset_missing_blocks{chain=~"$chain",dataset!="blocks"})'
    "\n- on (chain) group_left ()\n"
    'max by (chain) (tindexer_dataset_missing_blocks{chain=~"$chain",dataset="blocks"})'
)
RPC_REQUESTS_BY_METHOD = (
    f"sum by (chain, method) (rate(tindexer_rpc_requests_total{C}[$__rate_interval]))"
)

# --- Worker memory (one series per worker process) ------------------------------------------
WORKER_IN_FLIGHT = "max by (instance) (tindexer_worker_in_flight_bytes)"
WORKER_BUDGET = "max by (instance) (tindexer_worker_memory_budget_bytes)"
WORKER_BUDGET_WAIT = (
    "sum by (instance) (rate(tindexer_worker_budget_wait_seconds_total[$__rate_interval]))"
)

# --- Scheduling --------------------------------------------------------------------------------
BLOCKS_SCHEDULED_RATE = (
    f"sum by (chain, mode) (rate(tindexer_blocks_scheduled_total{C}[$__rate_interval]))"
)
WORKFLOWS_STARTED_RATE = (
    f"sum by (chain, workflow) (rate(tindexer_workflows_started_total{C}[$__rate_interval]))"
)
INFLIGHT_RANGES = f"max by (chain) (tindexer_inflight_ranges{C})"
START_FAILURES_RATE = (
    f"sum by (chain, reason) (rate(tindexer_workflow_start_failures_total{C}[$__rate_interval]))"
)
SCHEDULER_PARALLELISM = f"max by (chain) (tindexer_scheduler_parallelism{C})"
SCHEDULE_BATCH_P95 = (
    "histogram_quantile(0.95, sum by (chain, le) "
    f"(rate(tindexer_schedule_batch_duration_seconds_bucket{C}[$__rate_interval])))"
)
CONTINUE_AS_NEW = (
    f"sum by (chain) (increase(tindexer_scheduler_continue_as_new_total{C}[$__rate_interval]))"
)

# --- SLOs --------------------------------------------------------------------------------------
_LIVE, _RPC, _FRESH = live_sync_slo(CONFIG), rpc_slo(CONFIG), freshness_slo(CONFIG)
# The freshness SLO's target is each chain's own (its freshness_target knob), as recorded.
_FRESH_TARGET = f"{FRESHNESS_TARGET}{C}"
PERIOD = CONFIG.slo_period


def budget_remaining(error_ratio_rule: str, target: float | str) -> str:
    """Share of the period's error budget not yet spent (negative: overspent)."""
    return f"1 - {error_ratio_rule}{C} / (1 - {target})"


def burn_rate(error_ratio_rule: str, target: float | str) -> str:
    """How many times faster than sustainable the budget burns (1 = spent exactly in time)."""
    return f"{error_ratio_rule}{C} / (1 - {target})"


LIVE_SYNC_BUDGET = budget_remaining(_LIVE.error_ratio(PERIOD), _LIVE.target)
RPC_BUDGET = budget_remaining(_RPC.error_ratio(PERIOD), _RPC.target)
LIVE_SYNC_BURN_1H = burn_rate(_LIVE.error_ratio("1h"), _LIVE.target)
LIVE_SYNC_BURN_6H = burn_rate(_LIVE.error_ratio("6h"), _LIVE.target)
RPC_BURN_1H = burn_rate(_RPC.error_ratio("1h"), _RPC.target)
RPC_BURN_6H = burn_rate(_RPC.error_ratio("6h"), _RPC.target)
FRESHNESS_BUDGET = budget_remaining(_FRESH.error_ratio(PERIOD), _FRESH_TARGET)
FRESHNESS_BURN_1H = burn_rate(_FRESH.error_ratio("1h"), _FRESH_TARGET)
FRESHNESS_BURN_6H = burn_rate(_FRESH.error_ratio("6h"), _FRESH_TARGET)
FRESH_WITHIN_OBJECTIVE_1H = f"1 - {_FRESH.error_ratio('1h')}{C}"
