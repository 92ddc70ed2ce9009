"""What the indexer refuses to act on: a provider stuck behind the chain's head, a fork deeper
than the reorg window, a fork at or below the final block. Each stops a chain without deleting
anything."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, selector


def group(config: AlertConfig) -> Group:
    s = selector(config.job_selector)
    window = config.provider_behind_window
    return Group(
        "tindexer-provider",
        (
            Alert(
                name="TindexerProviderBehind",
                # Behind at every scan of the window; and still scanning (the regressions keep
                # counting), so a worker that stopped scanning cannot fire it with a stale gauge.
                expr=(
                    f"max by (chain) (min_over_time(tindexer_rpc_head_lag_blocks{s}[{window}]))"
                    f" > 0\n"
                    f"and on (chain)\n"
                    f"sum by (chain) (increase(tindexer_rpc_head_regressions_total{s}"
                    f"[{window}])) > 0"
                ),
                for_=config.provider_behind_for,
                severity="critical",
                summary="A chain's provider answers a head below what is indexed, at every scan.",
                description=(
                    "Chain {{ $labels.chain }}'s provider has been at least {{ $value | humanize }}"
                    f" blocks below the chain's head at every scan for {window}: nothing new is"
                    " indexed until it catches up."
                ),
            ),
            Alert(
                name="TindexerProviderDown",
                expr=f"min by (chain, provider) (tindexer_provider_up{s}) == 0",
                for_=config.provider_down_for,
                severity="warning",
                summary="A provider of a chain is out of rotation after repeated failures.",
                description=(
                    "Provider {{ $labels.provider }} of chain {{ $labels.chain }} has failed"
                    f" every probe for {config.provider_down_for}: the chain's other providers"
                    " carry its requests."
                ),
            ),
            Alert(
                name="TindexerProviderLagging",
                expr=(
                    f"min by (chain, provider) (tindexer_provider_head_lag_blocks{s})"
                    f" > {config.provider_lagging_blocks}"
                ),
                for_=config.provider_lagging_for,
                severity="warning",
                summary="A provider of a chain is far behind the chain's best provider.",
                description=(
                    "Provider {{ $labels.provider }} of chain {{ $labels.chain }} is"
                    " {{ $value }} blocks behind the best provider: it is not asked for blocks"
                    " above its head."
                ),
            ),
            Alert(
                name="TindexerNoHealthyProvider",
                expr=f"max by (chain) (tindexer_provider_up{s}) == 0",
                for_=config.no_healthy_provider_for,
                severity="critical",
                summary="Every provider of a chain is out of rotation.",
                description=(
                    "Chain {{ $labels.chain }} has had no healthy provider for"
                    f" {config.no_healthy_provider_for}: nothing is fetched until one answers."
                ),
            ),
            Alert(
                name="TindexerForkDeeperThanWindow",
                expr=f"max by (chain) (tindexer_chain_fork_too_deep{s}) > 0",
                for_=config.fork_too_deep_for,
                severity="critical",
                summary="A chain stopped on a fork deeper than its max_reorg_depth.",
                description=(
                    "Chain {{ $labels.chain }}'s stored blocks differ from the provider's below"
                    " the reorg window (tindexer_chain_fork_too_deep = {{ $value }}): the chain"
                    " is stopped, nothing was deleted."
                ),
            ),
            Alert(
                name="TindexerForkBelowFinality",
                expr=f"max by (chain) (tindexer_chain_fork_below_finality{s}) > 0",
                for_=config.fork_below_finality_for,
                severity="critical",
                summary="A chain stopped on stored blocks that differ at or below its final block.",
                description=(
                    "Chain {{ $labels.chain }}'s stored blocks differ from the provider's at or"
                    " below the final block (tindexer_chain_fork_below_finality = {{ $value }}):"
                    " the chain is stopped, nothing was deleted."
                ),
            ),
        ),
    )
