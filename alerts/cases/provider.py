"""promtool cases for alerts/groups/provider.py."""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite

J = 'job="tindexer",instance="w1:9464"'
LAG = "tindexer_rpc_head_lag_blocks"
REGRESSIONS = "tindexer_rpc_head_regressions_total"
FORK = "tindexer_chain_fork_too_deep"
FINAL_FORK = "tindexer_chain_fork_below_finality"
UP = "tindexer_provider_up"
PROVIDER_LAG = "tindexer_provider_head_lag_blocks"

PROVIDER_DOWN = Fires(
    {"chain": "main", "provider": "alchemy", "severity": "warning"},
    "A provider of a chain is out of rotation after repeated failures.",
    "Provider alchemy of chain main has failed every probe for 5m: the chain's other providers"
    " carry its requests.",
    "tindexerproviderdown",
)
PROVIDER_LAGGING = Fires(
    {"chain": "main", "provider": "own-node", "severity": "warning"},
    "A provider of a chain is far behind the chain's best provider.",
    "Provider own-node of chain main is 100 blocks behind the best provider: it is not asked"
    " for blocks above its head.",
    "tindexerproviderlagging",
)
NO_HEALTHY_PROVIDER = Fires(
    {"chain": "main", "severity": "critical"},
    "Every provider of a chain is out of rotation.",
    "Chain main has had no healthy provider for 2m: nothing is fetched until one answers.",
    "tindexernohealthyprovider",
)

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
            "alchemy is out from 2m; own-node blips out for a minute; then both out from 20m",
            (
                (f'{UP}{{{J},chain="main",provider="alchemy"}}', "1 1 0x30"),
                (f'{UP}{{{J},chain="main",provider="own-node"}}', "1x5 0 1x13 0x12"),
            ),
            (
                Check("5m", "TindexerProviderDown"),  # pending
                Check("8m", "TindexerProviderDown", (PROVIDER_DOWN,)),
                Check("8m", "TindexerNoHealthyProvider"),  # own-node's blip: alchemy was up
                Check("21m", "TindexerNoHealthyProvider"),  # pending
                Check("23m", "TindexerNoHealthyProvider", (NO_HEALTHY_PROVIDER,)),
            ),
        ),
        Scenario(
            "own-node falls 100 blocks behind at 2m; alchemy 20 behind now and then",
            (
                (f'{PROVIDER_LAG}{{{J},chain="main",provider="own-node"}}', "0 0 100x20"),
                (f'{PROVIDER_LAG}{{{J},chain="main",provider="alchemy"}}', "0 20 0 20x20"),
            ),
            (
                Check("6m", "TindexerProviderLagging"),  # pending
                Check("13m", "TindexerProviderLagging", (PROVIDER_LAGGING,)),
            ),
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
