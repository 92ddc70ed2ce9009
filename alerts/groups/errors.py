"""Who refuses or fails the indexer's work: rate limits, workflow starts, activity timeouts."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, needs, selector


def group(config: AlertConfig) -> Group:
    job = config.job_selector
    rate_window = config.rate_limited_window
    failures = f"tindexer_workflow_start_failures_total{selector(job)}"
    failures_window = config.workflow_start_failures_window
    timeouts_window = config.activity_timeout_window
    temporal_refusals = selector(job, 'source="temporal"')
    rpc_refusals = selector(job, 'outcome="rate_limited"')
    return Group(
        "tindexer-errors",
        (
            Alert(
                name="TindexerTemporalRateLimited",
                expr=(
                    f"sum by (job) (rate(tindexer_rate_limited_total{temporal_refusals}"
                    f"[{rate_window}]))"
                    f" > {config.temporal_rate_limited_per_second}"
                ),
                for_=config.temporal_rate_limited_for,
                severity="warning",
                summary="Temporal keeps refusing the indexer's requests for rate limiting.",
                description=(
                    "Temporal refused {{ $value | humanize }} requests per second for rate "
                    f"limiting over the last {rate_window}, for "
                    f"{config.temporal_rate_limited_for}: scheduling is throttled."
                ),
                depends_on=needs("temporal"),
            ),
            Alert(
                name="TindexerRPCRateLimited",
                expr=(
                    f"sum by (chain) (rate(tindexer_rpc_requests_total{rpc_refusals}"
                    f"[{rate_window}]))\n"
                    f"/\n"
                    f"sum by (chain) (rate(tindexer_rpc_requests_total{selector(job)}"
                    f"[{rate_window}])) > {config.rpc_rate_limited_ratio}"
                ),
                for_=config.rpc_rate_limited_for,
                severity="warning",
                summary="A chain's JSON-RPC provider keeps answering 429 Too Many Requests.",
                description=(
                    "{{ $value | humanizePercentage }} of JSON-RPC requests to chain "
                    "{{ $labels.chain }}'s provider were rate-limited over the last "
                    f"{rate_window}."
                ),
            ),
            Alert(
                name="TindexerWorkflowStartFailures",
                # A counter's first failure creates its series: count new series as well.
                expr=(
                    f"sum by (chain, reason) (increase({failures}[{failures_window}])) > 0\n"
                    f"or\n"
                    f"sum by (chain, reason) ({failures} unless {failures} offset "
                    f"{failures_window}) > 0"
                ),
                for_="0m",
                severity="warning",
                summary="Temporal refused to start workflows the indexer asked for.",
                description=(
                    "{{ $value | humanize }} workflow starts for chain {{ $labels.chain }} "
                    f"failed with {{{{ $labels.reason }}}} in the last {failures_window} "
                    "(the scheduler retries them)."
                ),
                depends_on=needs("temporal"),
            ),
            Alert(
                name="TindexerActivityTimeouts",
                expr=(
                    "sum by (activity) (rate(tindexer_activity_timeouts_total"
                    f"{selector(job)}[{timeouts_window}]))\n"
                    f"/\n"
                    "sum by (activity) (rate(tindexer_activity_duration_seconds_count"
                    f"{selector(job)}[{timeouts_window}])) > {config.activity_timeout_ratio}"
                ),
                for_=config.activity_timeout_for,
                severity="warning",
                summary="Too many activity attempts end in a timeout.",
                description=(
                    "{{ $value | humanizePercentage }} of {{ $labels.activity }} attempts timed "
                    f"out over the last {timeouts_window} (threshold "
                    f"{config.activity_timeout_ratio:.1%})."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
        ),
    )
