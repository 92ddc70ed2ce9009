"""Reorg repair near the head, from an untrusted provider's answers.

Stored hashes of the window head - max_reorg_depth + 1..head, and of the block just below it,
are compared with the provider's. A fork inside the window is deleted (its blocks are then
re-indexed); a fork that reaches below the window is refused with ForkDeeperThanWindow and
nothing is deleted: deleting the window alone would leave its stale parent stored, and the
re-indexed range above it would fail its parent check (ParentMismatch) forever. A header hash
that is not 32 bytes is bad data, never a fork.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from exporter.metrics import Metrics
from indexer.chain.model import BadChainData
from indexer.chain.rpc import RpcClient
from indexer.store.blocks import delete_from, stored_hashes

HASH_BYTES = 32


class ForkDeeperThanWindow(Exception):
    """Stored blocks differ from the provider's below the reorg window: too deep to repair."""


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


def fork_start(stored: dict[int, bytes], canonical: dict[int, bytes], low: int) -> int | None:
    """The first block from `low` up the provider disagrees with, or None; refused if the block
    below `low` differs as well (the fork is deeper than the window)."""
    forked = sorted(n for n, h in stored.items() if canonical.get(n) != h)
    inside = [n for n in forked if n >= low]
    if not inside:
        return None
    if forked[0] < low:
        raise ForkDeeperThanWindow(
            f"blocks {forked[0]}..{inside[0]} differ from the provider's: the fork reaches"
            f" below the reorg window {low}.. (max_reorg_depth); nothing deleted"
        )
    return inside[0]


async def repair_reorg(
    pool: asyncpg.Pool, metrics: Metrics, chain_id: int, rpc: RpcClient, head: int, window: int
) -> Repair | None:
    """Delete a fork within the `window` blocks up to `head`; None if there is none to repair.

    A block stored above `head` means the provider answers below what it served before: a lag,
    never a reorg, so nothing is compared or deleted (scan_head does not even ask then).
    """
    low = max(0, head - window + 1)
    with metrics.pg_query_duration.labels("reorg_window").time():
        stored = await stored_hashes(pool, chain_id, max(0, low - 1))
    if not stored or max(stored) > head:
        return None
    canonical = await rpc.get_block_hashes(min(stored), max(stored))
    check_hashes(canonical)
    start = fork_start(stored, canonical, low)
    if start is None:
        return None
    # Up to the head, not only to the newest block read: a store that committed after the read
    # holds descendants of the fork too.
    async with pool.acquire() as conn:
        await delete_from(conn, chain_id, start, head)
    return Repair(start=start, end=head, depth=max(stored) - start + 1)
