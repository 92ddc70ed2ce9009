"""SLOs as code: live sync, block freshness and RPC success, with multi-window multi-burn-rate
alerts.

Each SLO records its error ratio over the SRE workbook's windows (5m … 3d) and over the SLO
period (for the error-budget panel), and alerts when both a long and a short window burn the
budget faster than a factor of `BURN_RATES`: the long window proves it is significant, the
short one that it is still happening.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.config import BURN_RATES, SLO_WINDOWS, AlertConfig
from alerts.rules import Alert, Group, Record, needs, selector

LIVE_SYNC_MAX = "chain:tindexer_chain_live_sync:max"
# Each chain's freshness objective (indexer/freshness.py): its target, at the bucket bound `le`
# of tindexer_block_freshness_seconds within which a block counts as fresh. A worker exports it
# once it has stored a block seen at the head; several workers export the same value.
FRESHNESS_OBJECTIVE = "chain_le:tindexer_block_freshness_objective_ratio:max"
FRESHNESS_TARGET = "chain:tindexer_block_freshness_objective_ratio:max"


@dataclass(frozen=True)
class Slo:
    key: str
    alert: str
    target: float
    summary: str
    what: str  # completes "Chain X …{{ $value }} of the last <window>"
    depends_on: dict[str, dict[str, str]]
    budget: str = ""  # PromQL of a per-chain error budget; empty: 1 - target

    def error_ratio(self, window: str) -> str:
        """The recording rule holding the SLO's error ratio over `window`."""
        if self.key == "live_sync":
            return f"chain:tindexer_live_sync_lost:ratio{window}"
        if self.key == "freshness":
            return f"chain:tindexer_block_freshness_slow:ratio_rate{window}"
        return f"chain:tindexer_rpc_requests_failed:ratio_rate{window}"


def live_sync_slo(config: AlertConfig) -> Slo:
    return Slo(
        key="live_sync",
        alert="TindexerLiveSyncErrorBudgetBurn",
        target=config.live_sync_target,
        summary="A chain is out of live sync fast enough to exhaust its error budget.",
        what="was out of live sync {{ $value | humanizePercentage }}",
        depends_on=needs("postgres", "temporal"),
    )


def rpc_slo(config: AlertConfig) -> Slo:
    return Slo(
        key="rpc",
        alert="TindexerRPCErrorBudgetBurn",
        target=config.rpc_success_target,
        summary="A chain's JSON-RPC requests fail fast enough to exhaust the error budget.",
        what="had {{ $value | humanizePercentage }} of JSON-RPC requests fail",
        depends_on={},
    )


def freshness_slo(config: AlertConfig) -> Slo:
    """Blocks seen at the head and stored later than their chain's objective (each chain's
    target and bound are its knobs, exported with the histogram)."""
    return Slo(
        key="freshness",
        alert="TindexerBlockFreshnessErrorBudgetBurn",
        target=0.99,  # the knobs' default; each chain's own target is FRESHNESS_TARGET
        summary="A chain's new blocks become queryable too late often enough to exhaust its"
        " freshness error budget.",
        what="had {{ $value | humanizePercentage }} of its new blocks stored later than its"
        " freshness objective",
        depends_on=needs("postgres", "temporal"),
        budget=f"(1 - {FRESHNESS_TARGET})",
    )


def error_ratio_expr(slo: Slo, window: str, config: AlertConfig) -> str:
    job = config.job_selector
    if slo.key == "live_sync":
        return f"1 - avg_over_time({LIVE_SYNC_MAX}[{window}])"
    if slo.key == "freshness":
        # The share of blocks not in the objective's bucket: 1 - fresh / all.
        fresh = f"rate(tindexer_block_freshness_seconds_bucket{selector(job)}[{window}])"
        count = f"rate(tindexer_block_freshness_seconds_count{selector(job)}[{window}])"
        return (
            f"1 - (\n"
            f"  sum by (chain) ({fresh} and on (chain, le) {FRESHNESS_OBJECTIVE})\n"
            f"  /\n"
            f"  sum by (chain) ({count})\n"
            f")"
        )
    failed = selector(job, 'outcome!="ok"')
    requests = f"sum by (chain) (rate(tindexer_rpc_requests_total{selector(job)}[{window}]))"
    # A provider that never failed has no failure series: its error ratio is 0, not absent.
    return (
        f"(\n"
        f"  sum by (chain) (rate(tindexer_rpc_requests_total{failed}[{window}]))\n"
        f"  or on (chain)\n"
        f"  0 * {requests}\n"
        f")\n"
        f"/\n"
        f"{requests}"
    )


def burn_alerts(slo: Slo, config: AlertConfig) -> tuple[Alert, ...]:
    budget = slo.budget or f"(1 - {slo.target})"
    allowed = f"its {config.slo_period} error budget"
    if not slo.budget:
        allowed += f" of {1 - slo.target:.1%}"
    alerts = []
    for factor, long, short, for_, severity in BURN_RATES:
        threshold = f"({factor:g} * {budget})"
        alerts.append(
            Alert(
                name=slo.alert,
                expr=(
                    f"{slo.error_ratio(long)} > {threshold}\n"
                    f"and\n"
                    f"{slo.error_ratio(short)} > {threshold}"
                ),
                for_=for_,
                severity=severity,
                summary=slo.summary,
                description=(
                    f"Chain {{{{ $labels.chain }}}} {slo.what} of the last {long} (and of the "
                    f"last {short}): {allowed} burns {factor:g}x faster than "
                    f"sustainable."
                ),
                labels={"long": long, "short": short},
                depends_on=slo.depends_on,
            )
        )
    return tuple(alerts)


def slo_group(slo: Slo, config: AlertConfig, first: tuple[Record, ...] = ()) -> Group:
    records = tuple(
        Record(slo.error_ratio(window), error_ratio_expr(slo, window, config))
        for window in SLO_WINDOWS
    )
    return Group(
        f"tindexer-slo-{slo.key.replace('_', '-')}", (*first, *records, *burn_alerts(slo, config))
    )


def groups(config: AlertConfig) -> list[Group]:
    live, rpc, fresh = live_sync_slo(config), rpc_slo(config), freshness_slo(config)
    job = selector(config.job_selector)
    live_max = Record(LIVE_SYNC_MAX, f"max by (chain) (tindexer_chain_live_sync{job})")
    objective = (
        Record(
            FRESHNESS_OBJECTIVE,
            f"max by (chain, le) (tindexer_block_freshness_objective_ratio{job})",
        ),
        Record(FRESHNESS_TARGET, f"max by (chain) (tindexer_block_freshness_objective_ratio{job})"),
    )
    period = config.slo_period
    budget = Group(
        "tindexer-slo-budget",
        tuple(
            Record(slo.error_ratio(period), error_ratio_expr(slo, period, config))
            for slo in (live, rpc, fresh)
        ),
        interval=config.slo_budget_interval,
    )
    return [
        slo_group(live, config, first=(live_max,)),
        slo_group(fresh, config, first=objective),
        slo_group(rpc, config),
        budget,
    ]
