"""SLOs as code: live-sync freshness and RPC success, with multi-window multi-burn-rate alerts.

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


@dataclass(frozen=True)
class Slo:
    key: str
    alert: str
    target: float
    summary: str
    what: str  # completes "Chain X …{{ $value }} of the last <window>"
    depends_on: dict[str, dict[str, str]]

    def error_ratio(self, window: str) -> str:
        """The recording rule holding the SLO's error ratio over `window`."""
        if self.key == "live_sync":
            return f"chain:tindexer_live_sync_lost:ratio{window}"
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


def error_ratio_expr(slo: Slo, window: str, config: AlertConfig) -> str:
    job = config.job_selector
    if slo.key == "live_sync":
        return f"1 - avg_over_time({LIVE_SYNC_MAX}[{window}])"
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
    budget = f"(1 - {slo.target})"
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
                    f"last {short}): its {config.slo_period} error budget of "
                    f"{1 - slo.target:.1%} burns {factor:g}x faster than sustainable."
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
    live, rpc = live_sync_slo(config), rpc_slo(config)
    live_max = Record(
        LIVE_SYNC_MAX, f"max by (chain) (tindexer_chain_live_sync{selector(config.job_selector)})"
    )
    period = config.slo_period
    budget = Group(
        "tindexer-slo-budget",
        (
            Record(live.error_ratio(period), error_ratio_expr(live, period, config)),
            Record(rpc.error_ratio(period), error_ratio_expr(rpc, period, config)),
        ),
        interval=config.slo_budget_interval,
    )
    return [slo_group(live, config, first=(live_max,)), slo_group(rpc, config), budget]
