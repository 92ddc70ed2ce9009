"""`indexed_ranges`: the set of indexed blocks as merged intervals, so status costs O(gaps)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

RANGE_LOCK_CLASS = 7_204_118  # advisory lock class; the key is the chain id

MERGE_RANGE = """
WITH absorbed AS (
    DELETE FROM indexed_ranges
     WHERE chain_id = $1 AND start_block <= $3 + 1 AND end_block >= $2 - 1
    RETURNING start_block, end_block
)
INSERT INTO indexed_ranges (chain_id, start_block, end_block)
SELECT $1, LEAST($2, min(start_block)), GREATEST($3, max(end_block)) FROM absorbed
"""

SELECT_RANGES = """
SELECT start_block, end_block FROM indexed_ranges
 WHERE chain_id = $1 AND end_block >= $2 AND start_block <= $3
 ORDER BY start_block
"""


@dataclass(frozen=True)
class Coverage:
    """What is indexed of blocks first..head, and what is missing."""

    first: int
    head: int
    indexed_blocks: int
    last_indexed: int | None
    gaps: list[tuple[int, int]]

    @property
    def missing_blocks(self) -> int:
        return sum(end - start + 1 for start, end in self.gaps)

    @property
    def largest_gap(self) -> tuple[int, int] | None:
        return max(self.gaps, key=lambda gap: gap[1] - gap[0], default=None)


async def lock_chain_ranges(conn: asyncpg.Connection, chain_id: int) -> None:
    """Serialise range-set changes of one chain until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", RANGE_LOCK_CLASS, chain_id)


async def add_range(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> None:
    """Record start..end as indexed, merging with touching ranges. Call inside a transaction."""
    await lock_chain_ranges(conn, chain_id)
    await conn.execute(MERGE_RANGE, chain_id, start, end)


async def remove_range(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> None:
    """Mark start..end as not indexed, splitting ranges that straddle it. Inside a transaction."""
    await lock_chain_ranges(conn, chain_id)
    cut = await conn.fetch(
        "DELETE FROM indexed_ranges WHERE chain_id = $1 AND start_block <= $3 AND end_block >= $2"
        " RETURNING start_block, end_block",
        chain_id,
        start,
        end,
    )
    keep = [(r["start_block"], start - 1) for r in cut if r["start_block"] < start]
    keep += [(end + 1, r["end_block"]) for r in cut if r["end_block"] > end]
    if keep:
        await conn.executemany(
            "INSERT INTO indexed_ranges (chain_id, start_block, end_block) VALUES ($1, $2, $3)",
            [(chain_id, s, e) for s, e in keep],
        )


async def is_covered(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, start: int, end: int
) -> bool:
    """Whether one indexed range holds all of start..end."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM indexed_ranges"
            " WHERE chain_id = $1 AND start_block <= $2 AND end_block >= $3)",
            chain_id,
            start,
            end,
        )
    )


async def uncovered(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, ranges: list[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Those of `ranges` that no indexed range holds entirely."""
    records = await conn.fetch(
        """
        SELECT r.s, r.e FROM unnest($2::bigint[], $3::bigint[]) AS r (s, e)
         WHERE NOT EXISTS (SELECT 1 FROM indexed_ranges i
                            WHERE i.chain_id = $1 AND i.start_block <= r.s AND i.end_block >= r.e)
        """,
        chain_id,
        [s for s, _ in ranges],
        [e for _, e in ranges],
    )
    return {(r["s"], r["e"]) for r in records}


async def coverage(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, first: int, head: int
) -> Coverage:
    """Indexed count, last indexed block and the gaps in first..head, from the interval set."""
    records = await conn.fetch(SELECT_RANGES, chain_id, first, head)
    gaps: list[tuple[int, int]] = []
    indexed = 0
    last_indexed = None
    cursor = first
    for record in records:
        start, end = max(record["start_block"], first), min(record["end_block"], head)
        if start > cursor:
            gaps.append((cursor, start - 1))
        indexed += end - start + 1
        last_indexed = end
        cursor = end + 1
    if cursor <= head:
        gaps.append((cursor, head))
    return Coverage(first, head, indexed, last_indexed, gaps)
