"""promtool cases for alerts/groups/errors.py."""

from __future__ import annotations

from alerts.cases import JOB, Check, Fires, Scenario, Suite, labels

J = 'job="tindexer",instance="w1:9464"'
GET_BLOCK = 'method="eth_getBlockByNumber"'

TEMPORAL_RATE_LIMITED = Fires(
    labels(JOB, severity="warning"),
    "Temporal keeps refusing the indexer's requests for rate limiting.",
    "Temporal refused 1 requests per second for rate limiting over the last 5m, for 15m:"
    " scheduling is throttled.",
    "tindexertemporalratelimited",
)
RPC_RATE_LIMITED = Fires(
    {"chain": "main", "severity": "warning"},
    "A chain's JSON-RPC provider keeps answering 429 Too Many Requests.",
    "10% of JSON-RPC requests to chain main's provider were rate-limited over the last 5m.",
    "tindexerrpcratelimited",
)


def start_failures(chain: str, count: str) -> Fires:
    return Fires(
        {"chain": chain, "reason": "RESOURCE_EXHAUSTED", "severity": "warning"},
        "Temporal refused to start workflows the indexer asked for.",
        f"{count} workflow starts for chain {chain} failed with RESOURCE_EXHAUSTED in the last"
        " 10m (the scheduler retries them).",
        "tindexerworkflowstartfailures",
    )


ACTIVITY_TIMEOUTS = Fires(
    {"activity": "index_range", "severity": "warning"},
    "Too many activity attempts end in a timeout.",
    "0.5% of index_range attempts timed out over the last 15m (threshold 0.1%).",
    "tindexeractivitytimeouts",
)

SUITE = Suite(
    "errors",
    (
        Scenario(
            "Temporal refuses one request a second; the RPC provider's refusals do not count",
            (
                (f'tindexer_rate_limited_total{{{J},source="temporal"}}', "0+60x40"),
                (f'tindexer_rate_limited_total{{{J},source="rpc"}}', "0+600x40"),
            ),
            (
                Check("10m", "TindexerTemporalRateLimited"),  # pending
                Check("20m", "TindexerTemporalRateLimited", (TEMPORAL_RATE_LIMITED,)),
            ),
        ),
        Scenario(
            "a few Temporal refusals a minute are the SDK's business",
            ((f'tindexer_rate_limited_total{{{J},source="temporal"}}', "0+3x40"),),
            (Check("30m", "TindexerTemporalRateLimited"),),
        ),
        Scenario(
            "main's provider refuses 10% of requests; side's 1%",
            (
                (
                    f'tindexer_rpc_requests_total{{{J},chain="main",{GET_BLOCK},outcome="ok"}}',
                    "0+540x40",
                ),
                (
                    f'tindexer_rpc_requests_total{{{J},chain="main",{GET_BLOCK},'
                    'outcome="rate_limited"}',
                    "0+60x40",
                ),
                (
                    f'tindexer_rpc_requests_total{{{J},chain="side",{GET_BLOCK},outcome="ok"}}',
                    "0+594x40",
                ),
                (
                    f'tindexer_rpc_requests_total{{{J},chain="side",{GET_BLOCK},'
                    'outcome="rate_limited"}',
                    "0+6x40",
                ),
            ),
            (
                Check("10m", "TindexerRPCRateLimited"),  # pending
                Check("20m", "TindexerRPCRateLimited", (RPC_RATE_LIMITED,)),
            ),
        ),
        Scenario(
            "three start failures at 11m on an existing series; gone from the window at 30m",
            (
                (
                    f'tindexer_workflow_start_failures_total{{{J},chain="main",'
                    'reason="RESOURCE_EXHAUSTED"}',
                    "0x10 3x30",
                ),
            ),
            (
                Check("15m", "TindexerWorkflowStartFailures", (start_failures("main", "3"),)),
                Check("30m", "TindexerWorkflowStartFailures"),
            ),
        ),
        Scenario(
            "the first failures after a restart create the series",
            (
                (
                    f'tindexer_workflow_start_failures_total{{{J},chain="new",'
                    'reason="RESOURCE_EXHAUSTED"}',
                    "_x10 2x30",
                ),
            ),
            (Check("12m", "TindexerWorkflowStartFailures", (start_failures("new", "2"),)),),
        ),
        Scenario(
            "one index_range attempt in 200 times out; scan_head never does",
            (
                (f'tindexer_activity_timeouts_total{{{J},activity="index_range"}}', "0+1x40"),
                (
                    f'tindexer_activity_duration_seconds_count{{{J},activity="index_range",'
                    'outcome="ok"}',
                    "0+199x40",
                ),
                (
                    f'tindexer_activity_duration_seconds_count{{{J},activity="index_range",'
                    'outcome="timeout"}',
                    "0+1x40",
                ),
                (f'tindexer_activity_timeouts_total{{{J},activity="scan_head"}}', "0x40"),
                (
                    f'tindexer_activity_duration_seconds_count{{{J},activity="scan_head",'
                    'outcome="ok"}',
                    "0+100x40",
                ),
            ),
            (
                Check("10m", "TindexerActivityTimeouts"),  # pending
                Check("25m", "TindexerActivityTimeouts", (ACTIVITY_TIMEOUTS,)),
            ),
        ),
    ),
)
