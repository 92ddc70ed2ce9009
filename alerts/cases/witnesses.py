"""promtool cases for alerts/groups/witnesses.py."""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite

J = 'job="tindexer",instance="w1:9464"'
J2 = 'job="tindexer",instance="w2:9464"'
MISMATCH = "tindexer_provider_chain_id_mismatch"
ANSWERED = "tindexer_provider_chain_id"
PINNED = "tindexer_chain_id"
UNVERIFIED = "tindexer_provider_head_unverified"
DISAGREEMENTS = "tindexer_provider_fork_disagreements_total"


def wrong_chain_id(chain: str, provider: str, answered: str, expected: str) -> Fires:
    return Fires(
        {"chain": chain, "provider": provider, "severity": "warning"},
        "A provider of a chain answers another chain id; it is kept out.",
        f"Provider {provider} of chain {chain} answers chain id {answered}, expected {expected}"
        " (tindexer_provider_chain_id_mismatch = 1): it is kept out of rotation and nothing"
        " from it is used; fix or remove its URL.",
        "tindexerproviderwrongchainid",
    )


HEAD_UNVERIFIED = Fires(
    {"chain": "main", "provider": "liar", "severity": "warning"},
    "A provider of a chain claims a head that nothing verifies.",
    "Provider liar of chain main has claimed heads no other provider witnesses and it does not"
    " serve for 5m (tindexer_provider_head_unverified = 1): its claims are not adopted and it"
    " is demoted.",
    "tindexerproviderheadunverified",
)


def fork_disagreement(provider: str, count: str) -> Fires:
    return Fires(
        {"chain": "main", "provider": provider, "severity": "warning"},
        "A provider of a chain keeps reporting forks the others do not confirm.",
        f"Provider {provider} of chain main reported {count} forks in the last 10m that the"
        " other providers did not confirm: nothing was deleted for them.",
        "tindexerproviderforkdisagreement",
    )


SUITE = Suite(
    "witnesses",
    (
        Scenario(
            "testnet answers 999 on a 31337 chain from 2m; own-node mismatched for one check",
            (
                (f'{PINNED}{{{J},chain="main"}}', "31337x10"),
                (f'{ANSWERED}{{{J},chain="main",provider="testnet"}}', "999x10"),
                (f'{MISMATCH}{{{J},chain="main",provider="testnet"}}', "0 0 1x8"),
                (f'{ANSWERED}{{{J},chain="main",provider="own-node"}}', "31337x10"),
                (f'{MISMATCH}{{{J},chain="main",provider="own-node"}}', "0 1 0x8"),
            ),
            (
                Check("2m", "TindexerProviderWrongChainId"),  # pending
                Check(
                    "3m",
                    "TindexerProviderWrongChainId",
                    (wrong_chain_id("main", "testnet", "999", "31337"),),
                ),
            ),
        ),
        Scenario(
            "a worker that exports the mismatch but neither id: the alert still names both",
            ((f'{MISMATCH}{{{J},chain="side",provider="other"}}', "1x5"),),
            (
                Check(
                    "2m",
                    "TindexerProviderWrongChainId",
                    (wrong_chain_id("side", "other", "unknown", "unknown"),),
                ),
            ),
        ),
        Scenario(
            "liar's head claims fail from 1m to 11m; runner-up's for 3 minutes (a slow witness)",
            (
                (f'{UNVERIFIED}{{{J},chain="main",provider="liar"}}', "0 1x10 0x5"),
                (f'{UNVERIFIED}{{{J},chain="main",provider="runner-up"}}', "0 1 1 1 0x12"),
            ),
            (
                Check("5m", "TindexerProviderHeadUnverified"),  # pending
                Check("6m", "TindexerProviderHeadUnverified", (HEAD_UNVERIFIED,)),
                Check("11m", "TindexerProviderHeadUnverified", (HEAD_UNVERIFIED,)),
                Check("12m", "TindexerProviderHeadUnverified"),  # its claims hold again
            ),
        ),
        Scenario(
            "minority disagrees 3 times by 3m; flappy twice in 10m; w2's series is born at 3",
            (
                (f'{DISAGREEMENTS}{{{J},chain="main",provider="minority"}}', "0 1 2 3x15"),
                (f'{DISAGREEMENTS}{{{J},chain="main",provider="flappy"}}', "0x3 1x5 2x10"),
                (f'{DISAGREEMENTS}{{{J2},chain="main",provider="restarted"}}', "_x5 3x12"),
                (f'{DISAGREEMENTS}{{{J2},chain="main",provider="once"}}', "_x5 1x12"),
            ),
            (
                Check("2m", "TindexerProviderForkDisagreement"),  # 2 so far
                Check(
                    "3m", "TindexerProviderForkDisagreement", (fork_disagreement("minority", "3"),)
                ),
                Check(
                    "6m",
                    "TindexerProviderForkDisagreement",
                    (fork_disagreement("minority", "3"), fork_disagreement("restarted", "3")),
                ),
                Check(
                    "13m",
                    "TindexerProviderForkDisagreement",
                    (fork_disagreement("restarted", "3"),),
                ),
                Check("16m", "TindexerProviderForkDisagreement"),  # all older than the window
            ),
        ),
    ),
)
