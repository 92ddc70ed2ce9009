"""promtool cases for alerts/groups/provider.py."""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite

J = 'job="tindexer",instance="w1:9464"'
LAG = "tindexer_rpc_head_lag_blocks"
REGRESSIONS = "tindexer_rpc_head_regressions_total"
FORK = "tindexer_chain_fork_too_deep"
FINAL_FORK = "tindexer_chain_fork_below_finality"

PROVIDER_BEHIND = Fires(
    {"chain": "main", "severity": "critical"},
    "A chain's provider answers a head below what is indexed, at every scan.",
    "Chain main's provider has been at least 3 blocks below the chain's head at every scan for"
    " 10m: nothing new is indexed until it catches up.",
    "tindexerproviderbehind",
)
FORK_TOO_DEEP = Fires(
    {"chain": "main", "severity": "critical"},
    "A chain stopped on a fork deeper than its max_reorg_depth.",
    "Chain main's stored blocks differ from the provider's below the reorg window"
    " (tindexer_chain_fork_too_deep = 1): the chain is stopped, nothing was deleted.",
    "tindexerforkdeeperthanwindow",
)
FORK_BELOW_FINALITY = Fires(
    {"chain": "main", "severity": "critical"},
    "A chain stopped on stored blocks that differ at or below its final block.",
    "Chain main's stored blocks differ from the provider's at or below the final block"
    " (tindexer_chain_fork_below_finality = 1): the chain is stopped, nothing was deleted.",
    "tindexerforkbelowfinality",
)
# A load balancer's backends a block apart: behind at every other scrape.
FLAPPING = " ".join("1" if minute % 2 else "0" for minute in range(40))

SUITE = Suite(
    "provider",
    (
        Scenario(
            "main's provider is 3 blocks behind at every scan from 5m; side's flaps by one",
            (
                (f'{LAG}{{{J},chain="main"}}', "0x4 3x35"),
                (f'{REGRESSIONS}{{{J},chain="main"}}', "0x4 60+60x35"),
                (f'{LAG}{{{J},chain="side"}}', FLAPPING),
                (f'{REGRESSIONS}{{{J},chain="side"}}', "0+30x39"),
            ),
            (
                Check("14m", "TindexerProviderBehind"),  # the window still holds a level scan
                Check("18m", "TindexerProviderBehind"),  # behind for the whole window: pending
                Check("21m", "TindexerProviderBehind", (PROVIDER_BEHIND,)),
            ),
        ),
        Scenario(
            "a worker that stopped scanning keeps its last lag: no regression counts, no alert",
            (
                (f'{LAG}{{{J},chain="main"}}', "5x40"),
                (f'{REGRESSIONS}{{{J},chain="main"}}', "120x40"),
            ),
            (Check("30m", "TindexerProviderBehind"),),
        ),
        Scenario(
            "main stops on a deep fork at 3m; side met one for a single scan and went on",
            (
                (f'{FORK}{{{J},chain="main"}}', "0x2 1x20"),
                (f'{FORK}{{{J},chain="side"}}', "0 0 1 0x20"),
            ),
            (
                Check("3m", "TindexerForkDeeperThanWindow"),  # pending
                Check("5m", "TindexerForkDeeperThanWindow", (FORK_TOO_DEEP,)),
            ),
        ),
        Scenario(
            "main's final block differs from 3m on; side's differed for a single scan",
            (
                (f'{FINAL_FORK}{{{J},chain="main"}}', "0x2 1x20"),
                (f'{FINAL_FORK}{{{J},chain="side"}}', "0 0 1 0x20"),
            ),
            (
                Check("3m", "TindexerForkBelowFinality"),  # pending
                Check("5m", "TindexerForkBelowFinality", (FORK_BELOW_FINALITY,)),
            ),
        ),
    ),
)
