"""Reorg repair near the head, from an untrusted provider's answers.

The window is the blocks above the chain's final block and within max_reorg_depth of the head:
(max(finalized, head - max_reorg_depth), head]. Stored hashes of the window, and of the block
just below it, are compared with the provider's. A fork inside the window is deleted (its
blocks are then re-indexed) once the providers confirm it (fork_confirmed): one provider on a
minority fork, or behind a balancer flapping between backends, deletes nothing. A fork that
reaches below the window is refused with ForkDeeperThanWindow and nothing is deleted: deleting
the window alone would leave its stale parent stored, and the re-indexed range above it would
fail its parent check (ParentMismatch) forever. A fork reaching the final block is refused
with ForkBelowFinality and nothing is deleted: a final block never changes, so either the
provider is wrong or the chain broke finality, and both are for a human. A header hash that
is not 32 bytes is bad data, never a fork.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from exporter.metrics import Metrics
from indexer.chain.fetcher import Fetcher
from indexer.chain.model import BadChainData
from indexer.chain.witness import judge_fork
from indexer.store.blocks import delete_from, stored_hashes

log = logging.getLogger(__name__)

HASH_BYTES = 32


class ForkDeeperThanWindow(Exception):
    """Stored blocks differ from the provider's below the reorg window: too deep to repair."""


class ForkBelowFinality(Exception):
    """Stored blocks differ from the provider's at or below the final block: never repaired."""


def window_low(head: int, max_reorg_depth: int, finalized: int | None) -> int:
    """The lowest block a reorg check may repair: above `finalized` (None: nothing is final)
    and within `max_reorg_depth` of `head`; head + 1 when every block up to the head is final."""
    low = max(0, head - max_reorg_depth + 1)
    if finalized is not None:
        low = max(low, min(finalized, head) + 1)
    return low


@dataclass(frozen=True)
class Repair:
    """Blocks start..end deleted for a fork; `depth` counts the stored blocks it replaced."""

    start: int
    end: int
    depth: int


def check_hashes(hashes: dict[int, bytes]) -> None:
    """Header hashes must be 32 bytes: a cut or padded one would look like a fork."""
    for number, value in hashes.items():
        if len(value) != HASH_BYTES:
            raise BadChainData(
                f"block {number}: header hash of {len(value)} bytes, not {HASH_BYTES}"
            )


def fork_start(
    stored: dict[int, bytes],
    canonical: dict[int, bytes],
    low: int,
    finalized: int | None = None,
) -> int | None:
    """The first block from `low` up the provider disagrees with, or None; refused if a block
    at or below `finalized` differs (ForkBelowFinality, even when the window agrees: a final
    block changed), or if the block below `low` differs as well (ForkDeeperThanWindow)."""
    forked = sorted(n for n, h in stored.items() if canonical.get(n) != h)
    if finalized is not None and forked and forked[0] <= finalized:
        raise ForkBelowFinality(
            f"block {forked[0]} differs from the provider's at or below the final block"
            f" {finalized} (finality); nothing deleted"
        )
    inside = [n for n in forked if n >= low]
    if not inside:
        return None
    if forked[0] < low:
        raise ForkDeeperThanWindow(
            f"blocks {forked[0]}..{inside[0]} differ from the provider's: the fork reaches"
            f" below the reorg window {low}.. (max_reorg_depth); nothing deleted"
        )
    return inside[0]


async def fork_confirmed(
    metrics: Metrics, rpc: Fetcher, stored: dict[int, bytes], start: int
) -> bool:
    """Whether the providers confirm a fork at `start` (witness.judge_fork): the new branch
    linked to the stored block below and answered by more providers than the stored one.
    Each provider on an unconfirmed new branch is counted; nothing is deleted for it."""
    answers = await rpc.header_links_by_provider(start)
    verdict = judge_fork(start, stored[start], stored.get(start - 1), answers)
    if verdict.confirmed:
        return True
    for provider in verdict.new_branch:
        metrics.provider_fork_disagreements.labels(rpc.chain, provider).inc()
    log.warning(
        "%s: a fork at block %d is not confirmed (new branch: %s; stored branch: %s):"
        " nothing deleted",
        rpc.chain,
        start,
        ", ".join(verdict.new_branch) or "none",
        ", ".join(verdict.stored_branch) or "none",
    )
    return False


@dataclass(frozen=True)
class WindowCheck:
    """What a full reorg check read: the provider's hashes of blocks low - 1..head, and the
    repair it made, if any."""

    canonical: dict[int, bytes]
    repair: Repair | None


async def repair_reorg(
    pool: asyncpg.Pool,
    metrics: Metrics,
    chain_id: int,
    rpc: Fetcher,
    head: int,
    low: int,
    finalized: int | None = None,
) -> WindowCheck:
    """Delete a fork in blocks low..head (window_low), comparing every stored block from low - 1.

    A block stored above `head` means the provider answers below what it served before: a lag,
    never a reorg, so nothing is compared or deleted (scan_head does not even ask then).
    """
    below = max(0, min(low, head + 1) - 1)
    with metrics.pg_query_duration.labels("reorg_window").time():
        stored = await stored_hashes(pool, chain_id, below)
    if stored and max(stored) > head:
        return WindowCheck({}, None)
    canonical = await rpc.get_block_hashes(below, head)
    check_hashes(canonical)
    start = fork_start(stored, canonical, low, finalized)
    if start is None:
        return WindowCheck(canonical, None)
    if not await fork_confirmed(metrics, rpc, stored, start):
        return WindowCheck({}, None)  # nothing deleted; the next scan checks the window again
    # Up to the head, not only to the newest block read: a store that committed after the read
    # holds descendants of the fork too.
    async with pool.acquire() as conn:
        await delete_from(conn, chain_id, start, head)
    return WindowCheck(canonical, Repair(start=start, end=head, depth=max(stored) - start + 1))
