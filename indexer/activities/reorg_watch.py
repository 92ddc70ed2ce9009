"""Which headers a head scan fetches to look for reorgs: the tip when nothing changed.

A full check (reorg.repair_reorg) fetches the provider's hashes of the whole window, up to
max_reorg_depth + 1 headers; doing that at every scan (every second) cost 66 header fetches a
second on an idle chain. The watch keeps the provider's window as last fetched (a WindowView)
and, because a header's hash covers its parent's, fetches only what could have changed:

- head not moved, tip hash unchanged: nothing more (the tip came with the head);
- head advanced: the headers from the previous tip to the new one, which must chain through
  parentHash from the previous tip's hash, plus a rolling slice of the older window (below);
- anything else (tip hash changed, head went back, links broken, a stored hash differing from
  the view, a changed window or finality knob, a new worker): a full check.

Stored hashes of the window are read from PostgreSQL and compared with the view at every scan,
so a block stored from a fork since the last scan is found at once. The rolling slice guards
against a provider that answers a block number from a backend on another fork (a load
balancer): each advancing scan re-fetches RECHECK_SLICE consecutive blocks of the window,
sweeping it from the bottom; a sweep takes at most ceil((max_reorg_depth + 1) / RECHECK_SLICE)
advancing scans (9 at the default 64), so every block of the window is re-fetched within two
sweeps (18 advancing scans, 18 s at one block a second) or has left the window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg
from temporalio import activity

from exporter.metrics import Metrics
from indexer.activities.reorg import (
    ForkBelowFinality,
    Repair,
    check_hashes,
    repair_reorg,
    window_low,
)
from indexer.chain.fetcher import Fetcher
from indexer.config import ChainConfig
from indexer.store.blocks import stored_hashes
from indexer.store.chains import set_finalized

log = logging.getLogger(__name__)

RECHECK_SLICE = 8  # older window blocks re-fetched per advancing scan


async def final_block(rpc: Fetcher, config: ChainConfig, head: int) -> int | None:
    """The chain's final block at `head` by its `finality` knob, or None: nothing is final.

    Unset (the default), nothing is final and the reorg window is max_reorg_depth blocks, as
    before the knob: a provider's tags are not trusted unless asked for, because development
    nodes fake them (the simulated chain answers its head for "finalized"; anvil answers head -
    64, "safe" head - 32) and a tag at the head would turn every reorg into an alert. A depth N
    makes block head - N final. A tag ("finalized", "safe") is the node's block for it, never
    above the head; a node without the tag (null, or the tag refused) falls back to the
    default, so the chain keeps today's max_reorg_depth window instead of stopping.
    """
    finality = config.finality
    if finality is None:
        return None
    if isinstance(finality, int):
        return head - finality if head >= finality else None
    tagged = await rpc.tagged_block(finality)
    if tagged is None:
        log.warning(
            "%s: the provider has no %r block; reorg window by max_reorg_depth only",
            config.name,
            finality,
        )
        return None
    return min(tagged, head)


@dataclass
class WindowView:
    """The provider's hashes of blocks low - 1..tip as last fetched and linked."""

    tip: int
    hashes: dict[int, bytes]
    finalized: int | None
    shape: tuple[int, str | int | None]  # (max_reorg_depth, finality): a change starts over
    cursor: int = 0  # the next block the rolling slice re-fetches
    sweep_end: int = -1  # the tip when the running sweep began


@dataclass(frozen=True)
class Outcome:
    """A scan's reorg check: the repair, if any, the final block, and the headers fetched."""

    repair: Repair | None
    finalized: int | None
    headers: int
    full: bool


@dataclass
class ReorgWatch:
    """Per-chain window views of one worker; a restarted worker begins with a full check."""

    pool: asyncpg.Pool
    metrics: Metrics
    views: dict[str, WindowView] = field(default_factory=dict)
    finalized: dict[int, int | None] = field(default_factory=dict)  # last written, by chain id
    below_final: set[str] = field(default_factory=set)  # chains stopped on a fork below finality

    async def repair(
        self, chain_id: int, config: ChainConfig, rpc: Fetcher, head: int, tip_hash: bytes | None
    ) -> int:
        """Repair a fork above the final block and within max_reorg_depth of `head`, fetching
        only the headers that may have changed (check); the depth replaced, 0 if none. The
        fork gauges are cleared and the final block recorded; a fork too deep or below the
        final block raises (ForkDeeperThanWindow, ForkBelowFinality)."""
        chain_name = config.name
        outcome = await self.check(chain_id, config, rpc, head, tip_hash)
        self.metrics.fork_too_deep.labels(chain_name).set(0)
        self.metrics.fork_below_finality.labels(chain_name).set(0)
        self.below_final.discard(chain_name)
        await self._record_finalized(chain_id, chain_name, outcome.finalized)
        repair = outcome.repair
        if repair is None:
            return 0
        self.metrics.reorgs.labels(chain_name).inc()
        self.metrics.reorg_depth.labels(chain_name).observe(repair.depth)
        activity.logger.warning(
            "reorg on %s: blocks %d..%d replaced (depth %d)",
            chain_name,
            repair.start,
            repair.end,
            repair.depth,
        )
        return repair.depth

    def fork_below_finality(self, chain_name: str, exc: ForkBelowFinality) -> None:
        """Count a fork at or below the final block once per episode; the gauge holds while
        it lasts (the alert's signal)."""
        if chain_name not in self.below_final:
            self.below_final.add(chain_name)
            self.metrics.forks_below_finality.labels(chain_name).inc()
        self.metrics.fork_below_finality.labels(chain_name).set(1)
        activity.logger.error("%s: %s", chain_name, exc)

    async def _record_finalized(
        self, chain_id: int, chain_name: str, finalized: int | None
    ) -> None:
        """The final block on /metrics (no series while nothing is final) and, when it changed,
        in the chains row (for status)."""
        if finalized is not None:
            self.metrics.finalized_block.labels(chain_name).set(finalized)
        else:  # (removing a series that was never set is a no-op)
            self.metrics.finalized_block.remove(chain_name)
        if chain_id in self.finalized and self.finalized[chain_id] == finalized:
            return
        await set_finalized(self.pool, chain_id, finalized)
        self.finalized[chain_id] = finalized

    def forget(self, chain: str) -> None:
        self.views.pop(chain, None)

    async def check(
        self,
        chain_id: int,
        config: ChainConfig,
        rpc: Fetcher,
        head: int,
        tip_hash: bytes | None,
    ) -> Outcome:
        """Repair a fork above the final block; fetch only what may have changed since the
        last scan. Raises ForkDeeperThanWindow or ForkBelowFinality (the view is dropped)."""
        view = self.views.get(config.name)
        shape = (config.max_reorg_depth, config.finality)
        try:
            # A jump past the window (a worker or provider back after a while): the window.
            jumped = view is not None and head - view.tip > config.max_reorg_depth
            if view is None or view.shape != shape or head < view.tip or jumped:
                return await self._full(chain_id, config, rpc, head, 0)
            headers = 0
            if tip_hash is None:  # the head-1 rule: the head's header was not fetched
                tip_hash = (await rpc.get_block_hashes(head, head))[head]
                headers += 1
            if head == view.tip:
                if tip_hash != view.hashes.get(head):
                    return await self._full(chain_id, config, rpc, head, headers)
            else:
                linked, fetched = await self._advance(view, config, rpc, head, tip_hash)
                headers += fetched
                if not linked:
                    return await self._full(chain_id, config, rpc, head, headers)
            low = window_low(head, config.max_reorg_depth, view.finalized)
            with self.metrics.pg_query_duration.labels("reorg_window").time():
                stored = await stored_hashes(self.pool, chain_id, max(0, low - 1))
            if any(view.hashes.get(n) != h for n, h in stored.items()):
                return await self._full(chain_id, config, rpc, head, headers)
            return Outcome(None, view.finalized, headers, full=False)
        except BaseException:
            self.forget(config.name)
            raise

    async def _advance(
        self,
        view: WindowView,
        config: ChainConfig,
        rpc: Fetcher,
        head: int,
        tip_hash: bytes,
    ) -> tuple[bool, int]:
        """Extend the view from its tip to `head`: whether the new blocks chain from the old tip
        (and the rolling slice agrees with the view; if not, a full check follows), and the
        headers fetched."""
        links = await rpc.get_header_links(view.tip, head)
        fetched = len(links)
        check_hashes({n: link[0] for n, link in links.items()})
        if links[view.tip][0] != view.hashes.get(view.tip) or links[head][0] != tip_hash:
            return False, fetched
        if any(links[n][1] != links[n - 1][0] for n in range(view.tip + 1, head + 1)):
            return False, fetched
        finalized = await final_block(rpc, config, head)
        fetched += isinstance(config.finality, str)
        old_tip = view.tip
        view.hashes.update((n, link[0]) for n, link in links.items())
        view.tip, view.finalized = head, finalized
        low = window_low(head, config.max_reorg_depth, finalized)
        view.hashes = {n: h for n, h in view.hashes.items() if n >= low - 1}
        agrees, rechecked = await self._recheck_slice(view, rpc, max(0, low - 1), old_tip - 1)
        return agrees, fetched + rechecked

    async def _recheck_slice(
        self, view: WindowView, rpc: Fetcher, bottom: int, top: int
    ) -> tuple[bool, int]:
        """Re-fetch the next RECHECK_SLICE blocks of bottom..top (the window below the headers
        just linked): whether they agree with the view, and the count fetched."""
        if top < bottom:
            return True, 0
        if view.cursor > view.sweep_end or view.cursor < bottom:
            view.cursor, view.sweep_end = bottom, top
        start, end = view.cursor, min(view.cursor + RECHECK_SLICE - 1, top)
        if end < start:
            view.cursor = view.sweep_end + 1
            return True, 0
        hashes = await rpc.get_block_hashes(start, end)
        check_hashes(hashes)
        view.cursor = end + 1
        return all(view.hashes.get(n) == h for n, h in hashes.items()), len(hashes)

    async def _full(
        self, chain_id: int, config: ChainConfig, rpc: Fetcher, head: int, headers: int
    ) -> Outcome:
        """Fetch the whole window (re-reading the final block first), repair a fork above the
        final block, and start a new view from what the provider answered."""
        finalized = await final_block(rpc, config, head)
        headers += isinstance(config.finality, str)
        low = window_low(head, config.max_reorg_depth, finalized)
        checked = await repair_reorg(self.pool, self.metrics, chain_id, rpc, head, low, finalized)
        if not checked.canonical:  # something stored above the head: a lag, not a view
            self.forget(config.name)
        else:
            self.views[config.name] = WindowView(
                tip=head,
                hashes=checked.canonical,
                finalized=finalized,
                shape=(config.max_reorg_depth, config.finality),
            )
        return Outcome(checked.repair, finalized, headers + len(checked.canonical), full=True)
