"""`indexed_ranges`: the set of indexed blocks as merged intervals, so status costs O(gaps)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

RANGE_LOCK_CLASS = 7_204_118  # advisory lock class; the key is the chain id


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


LOCK_RANGES = "SELECT pg_advisory_xact_lock($1, $2)"


async def lock_chain_ranges(conn: asyncpg.Connection, chain_id: int) -> None:
    """Serialise range-set changes of one chain until the transaction ends."""
    await conn.execute(LOCK_RANGES, RANGE_LOCK_CLASS, chain_id)


MERGE_RANGE = """
WITH absorbed AS (
    DELETE FROM indexed_ranges
     WHERE chain_id = $1 AND start_block <= $3 + 1 AND end_block >= $2 - 1
    RETURNING start_block, end_block
)
INSERT INTO indexed_ranges (chain_id, start_block, end_block)
SELECT $1, LEAST($2, min(start_block)), GREATEST($3, max(end_block)) FROM absorbed
"""


async def add_range(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> None:
    """Record start..end as indexed, merging with touching ranges. Call inside a transaction."""
    await lock_chain_ranges(conn, chain_id)
    await conn.execute(MERGE_RANGE, chain_id, start, end)


# Every range that overlaps start..end; remove_range puts back the parts outside it.
CUT_RANGES = """
DELETE FROM indexed_ranges
 WHERE chain_id = $1 AND start_block <= $3 AND end_block >= $2
RETURNING start_block, end_block
"""
INSERT_RANGE = "INSERT INTO indexed_ranges (chain_id, start_block, end_block) VALUES ($1, $2, $3)"


async def remove_range(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> None:
    """Mark start..end as not indexed, splitting ranges that straddle it. Inside a transaction."""
    await lock_chain_ranges(conn, chain_id)
    cut = await conn.fetch(CUT_RANGES, chain_id, start, end)
    keep = [(r["start_block"], start - 1) for r in cut if r["start_block"] < start]
    keep += [(end + 1, r["end_block"]) for r in cut if r["end_block"] > end]
    if keep:
        await conn.executemany(INSERT_RANGE, [(chain_id, s, e) for s, e in keep])


IS_COVERED = """
SELECT EXISTS (SELECT 1 FROM indexed_ranges
                WHERE chain_id = $1 AND start_block <= $2 AND end_block >= $3)
"""


async def is_covered(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, start: int, end: int
) -> bool:
    """Whether one indexed range holds all of start..end."""
    return bool(await conn.fetchval(IS_COVERED, chain_id, start, end))


# $2 and $3: the candidate ranges' starts and ends, pairwise.
UNCOVERED = """
SELECT r.s, r.e
  FROM unnest($2::bigint[], $3::bigint[]) AS r (s, e)
 WHERE NOT EXISTS (SELECT 1 FROM indexed_ranges i
                    WHERE i.chain_id = $1 AND i.start_block <= r.s AND i.end_block >= r.e)
"""


async def uncovered(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, ranges: list[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Those of `ranges` that no indexed range holds entirely."""
    records = await conn.fetch(UNCOVERED, chain_id, [s for s, _ in ranges], [e for _, e in ranges])
    return {(r["s"], r["e"]) for r in records}


def _clipped(records: list[asyncpg.Record], lower: int, head: int) -> list[tuple[int, int]]:
    """Stored ranges, sorted, cut to lower..head (the queries return those that overlap it)."""
    return [(max(r["start_block"], lower), min(r["end_block"], head)) for r in records]


def gaps_between(
    ranges: list[tuple[int, int]], lower: int, head: int, *, complete: bool = True
) -> list[tuple[int, int]]:
    """The holes of lower..head around sorted, disjoint ranges inside it, oldest first.

    With `complete` False the ranges are only the first ones of lower..head (a page), so what
    follows the last of them is unknown: no hole is reported after it.
    """
    gaps: list[tuple[int, int]] = []
    cursor = lower
    for start, end in ranges:
        if start > cursor:
            gaps.append((cursor, start - 1))
        cursor = end + 1
    if complete and cursor <= head:
        gaps.append((cursor, head))
    return gaps


# Ranges that overlap first..head, oldest first.
OVERLAPPING_RANGES = """
SELECT start_block, end_block
  FROM indexed_ranges
 WHERE chain_id = $1 AND end_block >= $2 AND start_block <= $3
 ORDER BY start_block
"""


async def coverage(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, first: int, head: int
) -> Coverage:
    """Indexed count, last indexed block and the gaps in first..head, from the interval set."""
    ranges = _clipped(await conn.fetch(OVERLAPPING_RANGES, chain_id, first, head), first, head)
    return Coverage(
        first=first,
        head=head,
        indexed_blocks=sum(end - start + 1 for start, end in ranges),
        last_indexed=ranges[-1][1] if ranges else None,
        gaps=gaps_between(ranges, first, head),
    )


OVERLAPPING_RANGES_PAGE = OVERLAPPING_RANGES + " LIMIT $4\n"


async def gaps_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    chain_id: int,
    first: int,
    head: int,
    after: int | None,
    limit: int,
) -> tuple[list[tuple[int, int]], bool]:
    """Up to `limit` gaps of first..head that start after `after`, oldest first; and whether more.

    Reads at most limit + 2 ranges: stored ranges never touch (they are merged), so each one
    after the first closes exactly one gap.
    """
    lower = first if after is None else max(first, after)
    if lower > head:
        return [], False
    records = await conn.fetch(OVERLAPPING_RANGES_PAGE, chain_id, lower, head, limit + 2)
    truncated = len(records) == limit + 2
    gaps = gaps_between(_clipped(records, lower, head), lower, head, complete=not truncated)
    if after is not None:
        # A gap that starts at or before `after` was on an earlier page.
        gaps = [gap for gap in gaps if gap[0] > after]
    return gaps[:limit], truncated or len(gaps) > limit
