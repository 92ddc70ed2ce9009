"""RPC providers: is the chain's provider the bottleneck, rate-limiting us, or behind."""

from __future__ import annotations

from dashboards.common import (
    COUNT,
    GREEN,
    PER_SECOND,
    PERCENT,
    RED,
    SECONDS,
    YELLOW,
    Query,
    Rows,
    stat,
    steps,
    timeseries,
)
from dashboards.queries import rpc as q

TITLE = "Tindexer / RPC providers"
DESCRIPTION = (
    "JSON-RPC requests to each chain's provider: outcomes, 429s, latency and the adaptive "
    "concurrency limit; what the indexer refuses to act on: a head behind the chain's, a "
    "fork deeper than the reorg window; and providers that lie: on another chain, claiming "
    "heads nothing verifies, reporting forks the others do not confirm."
)
VARIABLES = ("chain",)

SUCCESS = steps((RED, None), (YELLOW, q.SUCCESS_TARGET), (GREEN, 0.999))

ROWS: Rows = [
    (
        "Providers",
        [
            timeseries(
                "Requests per second by provider",
                "HTTP requests to each provider of a chain: how the router spreads batches by "
                "score (latency, failures, 429s, lag, weight).",
                PER_SECOND,
                Query(q.P_REQUESTS, "{{chain}} {{provider}}"),
                stacked=True,
                width=8,
            ),
            timeseries(
                "Errors per second by provider",
                "Failed requests per provider (error, timeout, bad_data, too_large): each is "
                "retried on another provider at once.",
                PER_SECOND,
                Query(q.P_ERRORS, "{{chain}} {{provider}}"),
                width=8,
            ),
            timeseries(
                "429s per second by provider",
                "Requests each provider refused with 429; its request rate is halved and recovers.",
                PER_SECOND,
                Query(q.P_RATE_LIMITED, "{{chain}} {{provider}}"),
                width=8,
            ),
            timeseries(
                "Latency p95 by provider",
                "Time from sending a request to a provider to reading its whole answer.",
                SECONDS,
                Query(q.P_LATENCY_P95, "{{chain}} {{provider}}"),
                width=6,
            ),
            timeseries(
                "Head lag by provider",
                "Blocks each provider's head is behind the chain's best provider at the last "
                "head scan; a provider is never asked for blocks above its own head.",
                COUNT,
                Query(q.P_HEAD_LAG, "{{chain}} {{provider}}"),
                thresholds=steps((GREEN, None), (YELLOW, 16), (RED, 100)),
                width=6,
            ),
            timeseries(
                "Circuit (1 in rotation, 0 out)",
                "0 while a provider is out of rotation after repeated failures, until a probe "
                "succeeds.",
                COUNT,
                Query(q.P_UP, "{{chain}} {{provider}}"),
                thresholds=steps((RED, None), (GREEN, 1)),
                width=6,
            ),
            timeseries(
                "Request rate allowed by provider",
                "Requests per second this worker allows itself to each provider with a "
                "max_requests_per_second (its share, cut on 429s, recovering); 0: no limit.",
                PER_SECOND,
                Query(q.P_RATE_LIMIT, "{{chain}} {{provider}}"),
                width=6,
            ),
        ],
    ),
    (
        "Providers that lie",
        [
            timeseries(
                "Wrong chain id (1: kept out)",
                "1 while a provider answers eth_chainId with another id than the chain's: it is "
                "kept out of rotation and nothing from it is used (TindexerProviderWrongChainId; "
                "GET /chains/{name}/status names both ids).",
                COUNT,
                Query(q.P_CHAIN_ID_MISMATCH, "{{chain}} {{provider}}"),
                thresholds=steps((GREEN, None), (RED, 1)),
                width=12,
            ),
            timeseries(
                "Unconfirmed forks per second by provider",
                "Forks a provider reported that the other providers did not confirm: nothing "
                "was deleted for them (TindexerProviderForkDisagreement at 3 in 10 minutes).",
                PER_SECOND,
                Query(q.P_FORK_DISAGREEMENTS, "{{chain}} {{provider}}"),
                thresholds=steps((GREEN, None), (RED, 0.005)),
                width=12,
            ),
            timeseries(
                "Unverified head (1: claim not adopted)",
                "1 while a provider's last head claim was not adopted: no other provider "
                "witnessed it and it did not serve the block. It is routed as if at the "
                "verified head and demoted meanwhile (TindexerProviderHeadUnverified).",
                COUNT,
                Query(q.P_HEAD_UNVERIFIED, "{{chain}} {{provider}}"),
                thresholds=steps((GREEN, None), (RED, 1)),
                width=12,
            ),
            timeseries(
                "Head claims rejected per second by provider",
                "Head claims of each provider that were not adopted; the chain's head is the "
                "highest verified claim.",
                PER_SECOND,
                Query(q.P_HEAD_REJECTED, "{{chain}} {{provider}}"),
                width=12,
            ),
        ],
    ),
    (
        "Requests",
        [
            stat(
                "Success ratio (5m)",
                "Share of JSON-RPC requests answered OK over 5 minutes: the RPC SLO's "
                f"indicator (target {q.SUCCESS_TARGET:.0%}).",
                PERCENT,
                Query(q.SUCCESS_RATIO_5M, "{{chain}}"),
                thresholds=SUCCESS,
            ),
            stat(
                "Success ratio (1h)",
                "The same indicator over the last hour.",
                PERCENT,
                Query(q.SUCCESS_RATIO_1H, "{{chain}}"),
                thresholds=SUCCESS,
            ),
            timeseries(
                "Requests per second by outcome",
                "HTTP requests to the provider (a JSON-RPC batch is one) by outcome: ok, "
                "rate_limited (429), timeout, too_large (over rpc_max_response_bytes), "
                "bad_data (garbage JSON-RPC or chain data) or error.",
                PER_SECOND,
                Query(q.REQUESTS_BY_OUTCOME, "{{chain}} {{outcome}}"),
                stacked=True,
                width=16,
                height=5,
            ),
            timeseries(
                "Requests per second by method",
                "HTTP requests to the provider by JSON-RPC method: blocks, receipts, the head.",
                PER_SECOND,
                Query(q.REQUESTS_BY_METHOD, "{{chain}} {{method}}"),
                width=16,
            ),
            timeseries(
                "Receipts fetched with",
                "The JSON-RPC method each chain's receipts come from: eth_getBlockReceipts, or "
                "eth_getTransactionReceipt (one request per transaction, batched) after the "
                "provider answered that it lacks eth_getBlockReceipts. Only while receipts or "
                "logs are enabled and fetched.",
                COUNT,
                Query(q.RECEIPTS_METHOD, "{{chain}} {{method}}"),
                width=8,
            ),
        ],
    ),
    (
        "Rate limits",
        [
            timeseries(
                "429s per second",
                "Requests the provider refused with HTTP 429 Too Many Requests; the client "
                "honours Retry-After and lowers its concurrency.",
                PER_SECOND,
                Query(q.RATE_LIMITED_RATE, "{{chain}}"),
                thresholds=steps((GREEN, None), (RED, 0.1)),
            ),
            timeseries(
                "429 ratio",
                "Share of requests refused with 429; the alert fires at 5 % sustained.",
                PERCENT,
                Query(q.RATE_LIMITED_RATIO, "{{chain}}"),
                thresholds=steps((GREEN, None), (YELLOW, 0.01), (RED, 0.05)),
            ),
            timeseries(
                "Adaptive concurrency limit",
                "Requests allowed in flight to the provider: cut on 429s and timeouts, grown "
                "on success.",
                COUNT,
                Query(q.CONCURRENCY_LIMIT, "{{chain}}"),
            ),
        ],
    ),
    (
        "Latency",
        [
            timeseries(
                "Request latency percentiles",
                "Time from sending a request to reading its whole answer: p50, p95 and p99.",
                SECONDS,
                Query(q.LATENCY_P50, "{{chain}} p50"),
                Query(q.LATENCY_P95, "{{chain}} p95"),
                Query(q.LATENCY_P99, "{{chain}} p99"),
                width=12,
            ),
            timeseries(
                "IndexRange fetch phase p95",
                "Time an IndexRange activity spends fetching its blocks from the provider.",
                SECONDS,
                Query(q.FETCH_P95, "{{chain}}"),
                width=12,
            ),
        ],
    ),
    (
        "Untrusted answers",
        [
            timeseries(
                "Provider head behind the chain's head",
                "Blocks the provider's latest block was below the highest it answered before, "
                "at the last head scan: a lagging or resyncing node. Nothing is deleted or "
                "scheduled above its head meanwhile.",
                COUNT,
                Query(q.HEAD_LAG, "{{chain}}"),
                thresholds=steps((GREEN, None), (RED, 1)),
            ),
            timeseries(
                "Head regressions per second",
                "Head scans that found the provider below the chain's head; a load-balanced "
                "provider flaps now and then, a stuck one at every scan.",
                PER_SECOND,
                Query(q.HEAD_REGRESSIONS, "{{chain}}"),
            ),
            stat(
                "Fork deeper than the window",
                "1 while the chain is stopped on a fork deeper than its max_reorg_depth "
                "(nothing deleted; see the runbook of TindexerForkDeeperThanWindow).",
                COUNT,
                Query(q.FORK_TOO_DEEP, "{{chain}}"),
                thresholds=steps((GREEN, None), (RED, 1)),
            ),
        ],
    ),
]
