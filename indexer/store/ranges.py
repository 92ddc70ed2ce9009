"""Interval sets of blocks, merged, so status costs O(gaps): `indexed_ranges` (blocks that have
every dataset of their chain: what the scheduler walks) and `dataset_ranges` (per dataset)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from indexer.datasets import DATASETS, Dataset

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


@dataclass(frozen=True)
class IntervalTable:
    """The statements of one interval-set table: $1 chain, $2..$3 blocks, $4 the dataset(s).

    Both tables share one walk; dataset_ranges only adds `dataset` to the key.
    """

    merge: str  # record $2..$3 (for dataset $4), merging with touching ranges
    cut: str  # ranges overlapping $2..$3 (of datasets $4[]), deleted and returned
    insert: str  # one range (of dataset $4) back
    overlapping: str  # ranges overlapping $2..$3 (of dataset $4), oldest first


def _interval_table(table: str, dataset: bool) -> IntervalTable:
    key, keys = (" AND dataset = $4", " AND dataset = ANY ($4::text[])") if dataset else ("", "")
    column, value = (", dataset", ", $4::text") if dataset else ("", "")
    return IntervalTable(
        merge=f"""
WITH absorbed AS (
    DELETE FROM {table}
     WHERE chain_id = $1{key} AND start_block <= $3 + 1 AND end_block >= $2 - 1
    RETURNING start_block, end_block
)
INSERT INTO {table} (chain_id, start_block, end_block{column})
SELECT $1, LEAST($2, min(start_block)), GREATEST($3, max(end_block)){value} FROM absorbed
""",
        cut=f"""
DELETE FROM {table}
 WHERE chain_id = $1{keys} AND start_block <= $3 AND end_block >= $2
RETURNING start_block, end_block{column}
""",
        insert=f"INSERT INTO {table} (chain_id, start_block, end_block{column})"
        f" VALUES ($1, $2, $3{value})",
        overlapping=f"""
SELECT start_block, end_block
  FROM {table}
 WHERE chain_id = $1{key} AND end_block >= $2 AND start_block <= $3
 ORDER BY start_block
""",
    )


INDEXED_RANGES = _interval_table("indexed_ranges", dataset=False)
DATASET_RANGES = _interval_table("dataset_ranges", dataset=True)


async def add_range(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> None:
    """Record start..end as indexed, merging with touching ranges. Call inside a transaction."""
    await lock_chain_ranges(conn, chain_id)
    await conn.execute(INDEXED_RANGES.merge, chain_id, start, end)


async def add_dataset_ranges(
    conn: asyncpg.Connection, chain_id: int, datasets: Iterable[Dataset], start: int, end: int
) -> None:
    """Record start..end as holding each of `datasets`. Call inside a transaction."""
    await lock_chain_ranges(conn, chain_id)
    await conn.executemany(
        DATASET_RANGES.merge, [(chain_id, start, end, dataset) for dataset in datasets]
    )


async def _cut(
    conn: asyncpg.Connection, table: IntervalTable, chain_id: int, start: int, end: int, *key: Any
) -> None:
    """Remove start..end from the chain's ranges in `table`, keeping the parts outside it."""
    cut = await conn.fetch(table.cut, chain_id, start, end, *key)
    keep = [(chain_id, r[0], start - 1, *r[2:]) for r in cut if r["start_block"] < start]
    keep += [(chain_id, end + 1, r[1], *r[2:]) for r in cut if r["end_block"] > end]
    if keep:
        await conn.executemany(table.insert, keep)


async def remove_range(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> None:
    """Mark start..end as not indexed and in no dataset, splitting ranges that straddle it.

    Call inside a transaction.
    """
    await lock_chain_ranges(conn, chain_id)
    await _cut(conn, INDEXED_RANGES, chain_id, start, end)
    await _cut(conn, DATASET_RANGES, chain_id, start, end, list(DATASETS))


async def remove_dataset_range(
    conn: asyncpg.Connection, chain_id: int, dataset: Dataset, start: int, end: int
) -> None:
    """Mark start..end as lacking `dataset` (its rows were deleted). Inside a transaction."""
    await lock_chain_ranges(conn, chain_id)
    await _cut(conn, DATASET_RANGES, chain_id, start, end, [dataset])


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


def _coverage(records: list[asyncpg.Record], first: int, head: int) -> Coverage:
    ranges = _clipped(records, first, head)
    return Coverage(
        first=first,
        head=head,
        indexed_blocks=sum(end - start + 1 for start, end in ranges),
        last_indexed=ranges[-1][1] if ranges else None,
        gaps=gaps_between(ranges, first, head),
    )


async def coverage(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, first: int, head: int
) -> Coverage:
    """Indexed count, last indexed block and the gaps in first..head, from the interval set."""
    return _coverage(
        await conn.fetch(INDEXED_RANGES.overlapping, chain_id, first, head), first, head
    )


async def dataset_coverage(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, dataset: Dataset, first: int, head: int
) -> Coverage:
    """Like `coverage`, for the blocks that hold one dataset."""
    records = await conn.fetch(DATASET_RANGES.overlapping, chain_id, first, head, dataset)
    return _coverage(records, first, head)


# Every chain's ranges overlapping its own first..head at once ($1 ids, $2 firsts, $3 heads):
# a status page of 100 chains reads each interval table once instead of once per chain.
EVERY_CHAIN_OVERLAPPING = """
SELECT r.chain_id, r.start_block, r.end_block{column}
  FROM {table} r
  JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS c (id, first, head) ON r.chain_id = c.id
 WHERE r.end_block >= c.first AND r.start_block <= c.head
 ORDER BY r.chain_id{column}, r.start_block
"""
EVERY_CHAIN_INDEXED = EVERY_CHAIN_OVERLAPPING.format(table="indexed_ranges", column="")
EVERY_CHAIN_DATASETS = EVERY_CHAIN_OVERLAPPING.format(table="dataset_ranges", column=", dataset")


def _spans_arguments(spans: dict[int, tuple[int, int]]) -> tuple[list[int], ...]:
    ids = list(spans)
    return ids, [spans[i][0] for i in ids], [spans[i][1] for i in ids]


async def coverages(
    conn: asyncpg.Connection | asyncpg.Pool, spans: dict[int, tuple[int, int]]
) -> dict[int, Coverage]:
    """`coverage` of many chains in one query: chain id -> (first, head) in, its coverage out."""
    by_chain: dict[int, list[asyncpg.Record]] = {chain_id: [] for chain_id in spans}
    for record in await conn.fetch(EVERY_CHAIN_INDEXED, *_spans_arguments(spans)):
        by_chain[record["chain_id"]].append(record)
    return {i: _coverage(records, *spans[i]) for i, records in by_chain.items()}


async def dataset_coverages(
    conn: asyncpg.Connection | asyncpg.Pool, spans: dict[int, tuple[int, int]]
) -> dict[tuple[int, str], Coverage]:
    """`dataset_coverage` of every dataset of many chains in one query (one snapshot): (chain
    id, dataset) -> its coverage, for each dataset with a range in first..head; a dataset with
    none is absent (its coverage: `Coverage` of no records, `empty_coverage`)."""
    by_key: dict[tuple[int, str], list[asyncpg.Record]] = {}
    for record in await conn.fetch(EVERY_CHAIN_DATASETS, *_spans_arguments(spans)):
        by_key.setdefault((record["chain_id"], record["dataset"]), []).append(record)
    return {key: _coverage(records, *spans[key[0]]) for key, records in by_key.items()}


def empty_coverage(first: int, head: int) -> Coverage:
    """The coverage of first..head with nothing indexed."""
    return _coverage([], first, head)


DATASET_BLOCKS = """
SELECT dataset, sum(end_block - start_block + 1) AS blocks
  FROM dataset_ranges
 WHERE chain_id = $1
 GROUP BY dataset
"""


async def dataset_blocks(conn: asyncpg.Connection | asyncpg.Pool, chain_id: int) -> dict[str, int]:
    """How many blocks hold each dataset, over the whole chain (a dataset with none is absent)."""
    return {r["dataset"]: int(r["blocks"]) for r in await conn.fetch(DATASET_BLOCKS, chain_id)}


# The chain's indexed_ranges, rebuilt as the intersection of its datasets' ranges ($2). A
# dataset with no range at all makes it empty: count(*) of the datasets found must be all.
REBUILD_INDEXED_RANGES = """
WITH per_dataset AS (
    SELECT range_agg(int8range(start_block, end_block, '[]')) AS blocks
      FROM dataset_ranges
     WHERE chain_id = $1 AND dataset = ANY ($2::text[])
     GROUP BY dataset
), common AS (
    SELECT CASE WHEN count(*) = cardinality($2::text[]) THEN range_intersect_agg(blocks) END
           AS blocks
      FROM per_dataset
)
INSERT INTO indexed_ranges (chain_id, start_block, end_block)
SELECT $1, lower(r), upper(r) - 1
  FROM common, unnest(common.blocks) AS r
"""
CLEAR_INDEXED_RANGES = "DELETE FROM indexed_ranges WHERE chain_id = $1"


async def rebuild_indexed_ranges(
    conn: asyncpg.Connection, chain_id: int, datasets: Iterable[Dataset]
) -> None:
    """Make indexed_ranges the blocks holding every one of `datasets`. Inside a transaction.

    After a dataset is added to a chain, the scheduler's gap walk then re-schedules exactly
    the blocks that lack it. O(ranges), not O(blocks): multiranges of the merged intervals.
    """
    await lock_chain_ranges(conn, chain_id)
    await conn.execute(CLEAR_INDEXED_RANGES, chain_id)
    await conn.execute(REBUILD_INDEXED_RANGES, chain_id, list(datasets))


OVERLAPPING_RANGES_PAGE = INDEXED_RANGES.overlapping + " LIMIT $4\n"


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
