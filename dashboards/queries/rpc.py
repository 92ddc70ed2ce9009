"""PromQL for the RPC providers dashboard: requests by outcome, 429s, latency, concurrency."""

from __future__ import annotations

from alerts.config import CONFIG
from alerts.groups.slo import rpc_slo

C = '{chain=~"$chain"}'
RATE_LIMITED = '{chain=~"$chain",outcome="rate_limited"}'

REQUESTS_BY_OUTCOME = (
    f"sum by (chain, outcome) (rate(tindexer_rpc_requests_total{C}[$__rate_interval]))"
)
REQUESTS_BY_METHOD = (
    f"sum by (chain, method) (rate(tindexer_rpc_requests_total{C}[$__rate_interval]))"
)
# The receipts method in use (1) per chain: eth_getBlockReceipts, or the per-transaction fallback.
RECEIPTS_METHOD = f"max by (chain, method) (tindexer_rpc_receipts_method{C}) == 1"
RATE_LIMITED_RATE = (
    f"sum by (chain) (rate(tindexer_rpc_requests_total{RATE_LIMITED}[$__rate_interval]))"
)
RATE_LIMITED_RATIO = (
    f"{RATE_LIMITED_RATE}\n/\n"
    f"sum by (chain) (rate(tindexer_rpc_requests_total{C}[$__rate_interval]))"
)


def latency(quantile: float) -> str:
    return (
        f"histogram_quantile({quantile}, sum by (chain, le) "
        f"(rate(tindexer_rpc_request_duration_seconds_bucket{C}[$__rate_interval])))"
    )


LATENCY_P50, LATENCY_P95, LATENCY_P99 = latency(0.5), latency(0.95), latency(0.99)
CONCURRENCY_LIMIT = f"max by (chain) (tindexer_rpc_concurrency_limit{C})"
FETCH_P95 = (
    "histogram_quantile(0.95, sum by (chain, le) (rate("
    'tindexer_index_range_duration_seconds_bucket{chain=~"$chain",phase="fetch"}'
    "[$__rate_interval])))"
)
# The SLI as the recording rules define it (alerts/groups/slo.py), over 5 minutes and an hour.
_SLO = rpc_slo(CONFIG)
SUCCESS_RATIO_5M = f"1 - {_SLO.error_ratio('5m')}{C}"
SUCCESS_RATIO_1H = f"1 - {_SLO.error_ratio('1h')}{C}"
SUCCESS_TARGET = _SLO.target
# What the indexer refuses to act on: a head below the chain's, a fork deeper than the window.
HEAD_LAG = f"max by (chain) (tindexer_rpc_head_lag_blocks{C})"
HEAD_REGRESSIONS = (
    f"sum by (chain) (rate(tindexer_rpc_head_regressions_total{C}[$__rate_interval]))"
)
FORK_TOO_DEEP = f"max by (chain) (tindexer_chain_fork_too_deep{C})"

# Per provider (its configured name, never its URL): traffic, refusals, latency, head, circuit.
P_REQUESTS = f"sum by (chain, provider) (rate(tindexer_rpc_requests_total{C}[$__rate_interval]))"
P_ERRORS = (
    'sum by (chain, provider) (rate(tindexer_rpc_requests_total{chain=~"$chain",'
    'outcome=~"error|timeout|bad_data|too_large"}[$__rate_interval]))'
)
P_RATE_LIMITED = (
    f"sum by (chain, provider) (rate(tindexer_rpc_requests_total{RATE_LIMITED}[$__rate_interval]))"
)
P_LATENCY_P95 = (
    "histogram_quantile(0.95, sum by (chain, provider, le) "
    f"(rate(tindexer_rpc_request_duration_seconds_bucket{C}[$__rate_interval])))"
)
P_HEAD_LAG = f"max by (chain, provider) (tindexer_provider_head_lag_blocks{C})"
P_UP = f"min by (chain, provider) (tindexer_provider_up{C})"
P_RATE_LIMIT = f"sum by (chain, provider) (tindexer_provider_rate_limit_requests_per_second{C})"

# Providers that lie (issue 21): kept out for another chain id, head claims not adopted, forks
# the others did not confirm. Per provider.
P_CHAIN_ID_MISMATCH = f"max by (chain, provider) (tindexer_provider_chain_id_mismatch{C})"
P_HEAD_UNVERIFIED = f"max by (chain, provider) (tindexer_provider_head_unverified{C})"
P_HEAD_REJECTED = (
    f"sum by (chain, provider) (rate(tindexer_provider_head_rejected_total{C}[$__rate_interval]))"
)
P_FORK_DISAGREEMENTS = (
    "sum by (chain, provider) "
    f"(rate(tindexer_provider_fork_disagreements_total{C}[$__rate_interval]))"
)
