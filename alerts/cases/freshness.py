"""promtool cases for the block-freshness SLO (alerts/groups/slo.py): per-chain objectives.

Five-minute samples over more than three days, as for the other SLOs (alerts/cases/slo.py).
A block is fresh when it falls in the bucket its chain's objective names (`le`); the share of
late blocks is compared with each chain's own target, so the same lateness pages one chain
and not another.
"""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite, Value

J = 'job="tindexer",instance="w1:9464"'
PAGE_FAST, PAGE_SLOW = ("1h", "5m", "critical", "14.4"), ("6h", "30m", "critical", "6")
TICKET_FAST, TICKET_SLOW = ("1d", "2h", "warning", "3"), ("3d", "6h", "warning", "1")
OUTAGE = 4505  # 901 good samples (0 … 4500m), then the late blocks start

ALERT = "TindexerBlockFreshnessErrorBudgetBurn"
SLOW_1H = "chain:tindexer_block_freshness_slow:ratio_rate1h"
OBJECTIVE = "chain_le:tindexer_block_freshness_objective_ratio:max"


def after(minutes: int) -> str:
    return f"{OUTAGE + minutes}m"


def burn(chain: str, rule: tuple[str, str, str, str], ratio: str) -> Fires:
    long, short, severity, factor = rule
    return Fires(
        {"chain": chain, "long": long, "short": short, "severity": severity},
        "A chain's new blocks become queryable too late often enough to exhaust its freshness"
        " error budget.",
        f"Chain {chain} had {ratio} of its new blocks stored later than its freshness objective"
        f" of the last {long} (and of the last {short}): its 30d error budget burns {factor}x"
        " faster than sustainable.",
        "tindexerblockfreshnesserrorbudgetburn",
    )


def chain_series(
    chain: str, bound: str, target: float, fresh: str, count: str
) -> tuple[tuple[str, str], ...]:
    """A chain's objective, its objective's bucket, a tighter bucket, +Inf and the count."""
    labels = f'{J},chain="{chain}"'
    return (
        (f'tindexer_block_freshness_objective_ratio{{{labels},le="{bound}"}}', f"{target}x1000"),
        (f'tindexer_block_freshness_seconds_bucket{{{labels},le="{bound}"}}', fresh),
        # Buckets other than the objective's never count: here none is fresh within 0.1 s.
        (f'tindexer_block_freshness_seconds_bucket{{{labels},le="0.1"}}', "0x1000"),
        (f'tindexer_block_freshness_seconds_bucket{{{labels},le="+Inf"}}', count),
        (f"tindexer_block_freshness_seconds_count{{{labels}}}", count),
    )


SUITE = Suite(
    "freshness",
    (
        Scenario(
            "main's blocks all arrive late after three good days; side stays fresh",
            (
                *chain_series("main", "4.0", 0.99, "0+300x900 270000x100", "0+300x1000"),
                *chain_series("side", "26.0", 0.99, "0+300x1000", "0+300x1000"),
            ),
            (
                Check(after(0), ALERT),
                Check(after(15), ALERT, (burn("main", PAGE_FAST, "33.33%"),)),
                Check(
                    after(230),
                    ALERT,
                    (
                        burn("main", PAGE_FAST, "100%"),
                        burn("main", PAGE_SLOW, "65.28%"),
                        burn("main", TICKET_FAST, "16.32%"),
                        burn("main", TICKET_SLOW, "5.44%"),
                    ),
                ),
            ),
            (
                Value(
                    after(0),
                    OBJECTIVE,
                    (
                        (f'{OBJECTIVE}{{chain="main",le="4.0"}}', 0.99),
                        (f'{OBJECTIVE}{{chain="side",le="26.0"}}', 0.99),
                    ),
                ),
                Value(
                    after(60),
                    f"{SLOW_1H}",
                    # a whole hour of late blocks on main, none on side
                    ((f'{SLOW_1H}{{chain="main"}}', 1.0), (f'{SLOW_1H}{{chain="side"}}', 0.0)),
                ),
            ),
            interval="5m",
        ),
        Scenario(
            "0.5 % of blocks late: within a 99 % target, a ticket at a 99.9 % target",
            (
                *chain_series("loose", "4.0", 0.99, "0+995x1000", "0+1000x1000"),
                *chain_series("strict", "4.0", 0.999, "0+995x1000", "0+1000x1000"),
            ),
            (
                Check(
                    "4500m",
                    ALERT,
                    (burn("strict", TICKET_FAST, "0.5%"), burn("strict", TICKET_SLOW, "0.5%")),
                ),
            ),
            interval="5m",
        ),
        Scenario(
            "one five-minute blip of late blocks after three good days burns too little",
            chain_series("main", "4.0", 0.99, "0+300x900 270000 270300+300x100", "0+300x1000"),
            (Check(after(10), ALERT), Check(after(240), ALERT)),
            interval="5m",
        ),
    ),
    evaluation_interval="5m",
)
