"""Providers that lie: one on another chain, one claiming heads nobody else sees, one reporting
forks the others do not confirm. The indexer already keeps each from changing the data (kept
out, not adopted, nothing deleted); these alerts tell a human which provider to fix."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, selector


def queried_value(metric: str, job_selector: str, *labels: str) -> str:
    """A template that prints `metric`'s value for the alert's own `labels` as an integer (a
    chain id), or 'unknown' when the series is missing."""
    matchers = ",".join([job_selector, *(f"{label}=%q" for label in labels)])
    arguments = " ".join(f"$labels.{label}" for label in labels)
    return (
        f"{{{{ with printf `max({metric}{{{matchers}}})` {arguments} | query }}}}"
        '{{ . | first | value | printf "%.0f" }}{{ else }}unknown{{ end }}'
    )


def group(config: AlertConfig) -> Group:
    s = selector(config.job_selector)
    window = config.fork_disagreements_window
    disagreements = f"tindexer_provider_fork_disagreements_total{s}"
    answered = queried_value("tindexer_provider_chain_id", config.job_selector, "chain", "provider")
    expected = queried_value("tindexer_chain_id", config.job_selector, "chain")
    return Group(
        "tindexer-witnesses",
        (
            Alert(
                name="TindexerProviderWrongChainId",
                expr=f"max by (chain, provider) (tindexer_provider_chain_id_mismatch{s}) == 1",
                for_=config.provider_wrong_chain_id_for,
                severity="warning",
                summary="A provider of a chain answers another chain id; it is kept out.",
                description=(
                    "Provider {{ $labels.provider }} of chain {{ $labels.chain }} answers chain"
                    f" id {answered}, expected {expected}"
                    " (tindexer_provider_chain_id_mismatch = {{ $value }}): it is kept out of"
                    " rotation and nothing from it is used; fix or remove its URL."
                ),
            ),
            Alert(
                name="TindexerProviderHeadUnverified",
                expr=f"max by (chain, provider) (tindexer_provider_head_unverified{s}) == 1",
                for_=config.provider_head_unverified_for,
                severity="warning",
                summary="A provider of a chain claims a head that nothing verifies.",
                description=(
                    "Provider {{ $labels.provider }} of chain {{ $labels.chain }} has claimed"
                    " heads no other provider witnesses and it does not serve for"
                    f" {config.provider_head_unverified_for}"
                    " (tindexer_provider_head_unverified = {{ $value }}): its claims are not"
                    " adopted and it is demoted."
                ),
            ),
            Alert(
                name="TindexerProviderForkDisagreement",
                # A provider's first disagreement after a restart may create its series: count
                # a series that is new within the window too (as TindexerDeepReorg does).
                expr=(
                    f"sum by (chain, provider) (increase({disagreements}[{window}]))"
                    f" >= {config.fork_disagreements_count}\n"
                    f"or\n"
                    f"sum by (chain, provider) ({disagreements} unless {disagreements}"
                    f" offset {window}) >= {config.fork_disagreements_count}"
                ),
                for_="0m",
                severity="warning",
                summary="A provider of a chain keeps reporting forks the others do not confirm.",
                description=(
                    "Provider {{ $labels.provider }} of chain {{ $labels.chain }} reported"
                    " {{ $value | humanize }} forks in the last"
                    f" {window} that the other providers did not confirm: nothing was deleted"
                    " for them."
                ),
            ),
        ),
    )
