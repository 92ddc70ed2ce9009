"""promtool cases for alerts/groups/slo.py: recording rules and multi-window burn-rate alerts.

Five-minute samples over more than three days, so the 3d window holds real history: a short
blip after three good days must not page, while a sustained outage trips the 14.4× page
first, then 6×, then the 3× and 1× tickets, each after its `for`.
"""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite, Value

J = 'job="tindexer",instance="w1:9464"'
GET_BLOCK = 'method="eth_getBlockByNumber"'
# (long, short, severity) of each burn-rate rule, in the order of alerts/config.py.
PAGE_FAST, PAGE_SLOW = ("1h", "5m", "critical", "14.4"), ("6h", "30m", "critical", "6")
TICKET_FAST, TICKET_SLOW = ("1d", "2h", "warning", "3"), ("3d", "6h", "warning", "1")
# Outage scenarios: 901 good samples (0 … 4500m), bad from 4505m.
OUTAGE = 4505


def after(minutes: int) -> str:
    return f"{OUTAGE + minutes}m"


def live_sync_burn(rule: tuple[str, str, str, str], ratio: str) -> Fires:
    long, short, severity, factor = rule
    return Fires(
        {"chain": "main", "long": long, "short": short, "severity": severity},
        "A chain is out of live sync fast enough to exhaust its error budget.",
        f"Chain main was out of live sync {ratio} of the last {long} (and of the last {short}):"
        f" its 30d error budget of 1.0% burns {factor}x faster than sustainable.",
        "tindexerlivesyncerrorbudgetburn",
    )


def rpc_burn(rule: tuple[str, str, str, str], ratio: str) -> Fires:
    long, short, severity, factor = rule
    return Fires(
        {"chain": "main", "long": long, "short": short, "severity": severity},
        "A chain's JSON-RPC requests fail fast enough to exhaust the error budget.",
        f"Chain main had {ratio} of JSON-RPC requests fail of the last {long} (and of the last"
        f" {short}): its 30d error budget of 1.0% burns {factor}x faster than sustainable.",
        "tindexerrpcerrorbudgetburn",
    )


def rpc_requests(chain: str, outcome: str, values: str) -> tuple[str, str]:
    return (
        f'tindexer_rpc_requests_total{{{J},chain="{chain}",{GET_BLOCK},outcome="{outcome}"}}',
        values,
    )


LIVE = "TindexerLiveSyncErrorBudgetBurn"
LIVE_MAX = "chain:tindexer_chain_live_sync:max"
LOST_1H = "chain:tindexer_live_sync_lost:ratio1h"
RPC_5M = "chain:tindexer_rpc_requests_failed:ratio_rate5m"
RPC = "TindexerRPCErrorBudgetBurn"

SUITE = Suite(
    "slo",
    (
        Scenario(
            "main goes out of live sync for good after three good days; side stays live",
            (
                (f'tindexer_chain_live_sync{{{J},chain="main"}}', "1x900 0x100"),
                (f'tindexer_chain_live_sync{{{J},chain="side"}}', "1x1000"),
            ),
            (
                Check(after(0), LIVE),
                Check(after(15), LIVE, (live_sync_burn(PAGE_FAST, "30.77%"),)),
                Check(
                    after(60),
                    LIVE,
                    (live_sync_burn(PAGE_FAST, "100%"), live_sync_burn(PAGE_SLOW, "17.81%")),
                ),
                Check(
                    after(110),
                    LIVE,
                    (
                        live_sync_burn(PAGE_FAST, "100%"),
                        live_sync_burn(PAGE_SLOW, "31.51%"),
                        live_sync_burn(TICKET_FAST, "7.958%"),
                    ),
                ),
                Check(
                    after(230),
                    LIVE,
                    (
                        live_sync_burn(PAGE_FAST, "100%"),
                        live_sync_burn(PAGE_SLOW, "64.38%"),
                        live_sync_burn(TICKET_FAST, "16.26%"),
                        live_sync_burn(TICKET_SLOW, "5.434%"),
                    ),
                ),
            ),
            (
                Value(
                    after(0),
                    f"{LIVE_MAX}",
                    ((f'{LIVE_MAX}{{chain="main"}}', 0), (f'{LIVE_MAX}{{chain="side"}}', 1)),
                ),
                # 4 of the 13 five-minute samples in the last hour are out of sync
                Value(
                    after(15),
                    f'{LOST_1H}{{chain="main"}}',
                    ((f'{LOST_1H}{{chain="main"}}', 4 / 13),),
                ),
            ),
            interval="5m",
        ),
        Scenario(
            "one five-minute blip after three good days burns too little to alert",
            ((f'tindexer_chain_live_sync{{{J},chain="main"}}', "1x900 0 1x100"),),
            (Check(after(10), LIVE), Check(after(240), LIVE)),
            interval="5m",
        ),
        Scenario(
            "half of main's requests fail after three good days; side fails 0.5% throughout; "
            "clean never fails",
            (
                rpc_requests("main", "ok", "0+1000x1000"),
                rpc_requests("main", "error", "0x900 0+1000x100"),
                rpc_requests("side", "ok", "0+995x1000"),
                rpc_requests("side", "rate_limited", "0+5x1000"),
                rpc_requests("clean", "ok", "0+100x1000"),
            ),
            (
                Check(after(0), RPC),
                Check(after(30), RPC, (rpc_burn(PAGE_FAST, "33.33%"),)),
                Check(
                    after(230),
                    RPC,
                    (
                        rpc_burn(PAGE_FAST, "50%"),
                        rpc_burn(PAGE_SLOW, "38.98%"),
                        rpc_burn(TICKET_FAST, "13.77%"),
                        rpc_burn(TICKET_SLOW, "5.055%"),
                    ),
                ),
            ),
            (
                Value(
                    after(15),
                    RPC_5M,
                    (
                        (f'{RPC_5M}{{chain="clean"}}', 0),  # never failed: 0, not absent
                        (f'{RPC_5M}{{chain="main"}}', 0.5),
                        (f'{RPC_5M}{{chain="side"}}', 0.005),
                    ),
                ),
            ),
            interval="5m",
        ),
    ),
    evaluation_interval="5m",
)
