"""Admin writes and reads: create, change and delete chains; page through a chain's gaps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from indexer.config import ChainConfig
from indexer.store.chains import ChainRow

INSERT_CHAIN = """
INSERT INTO chains (name, config) VALUES ($1, $2::jsonb)
ON CONFLICT (name) DO NOTHING
RETURNING id, config::text AS config, head
"""

LOCK_CHAIN = "SELECT id, config::text AS config, head FROM chains WHERE name = $1 FOR UPDATE"

UPDATE_CONFIG = """
UPDATE chains SET config = $2::jsonb, updated_at = now() WHERE id = $1
RETURNING id, config::text AS config, head
"""

# transactions has no foreign key to chains; blocks and indexed_ranges cascade.
DELETE_TRANSACTIONS = "DELETE FROM transactions WHERE chain_id = $1"
DELETE_CHAIN = "DELETE FROM chains WHERE id = $1"

RANGES_FROM = """
SELECT start_block, end_block FROM indexed_ranges
 WHERE chain_id = $1 AND end_block >= $2 AND start_block <= $3
 ORDER BY start_block
 LIMIT $4
"""


def _row(record: asyncpg.Record) -> ChainRow:
    return ChainRow(
        id=record["id"],
        config=ChainConfig.model_validate_json(record["config"]),
        head=record["head"],
    )


async def insert_chain(
    conn: asyncpg.Connection | asyncpg.Pool, config: ChainConfig
) -> ChainRow | None:
    """Create the chain; None if one of that name exists (nothing is changed then)."""
    record = await conn.fetchrow(INSERT_CHAIN, config.name, config.model_dump_json())
    return _row(record) if record else None


async def update_chain(
    pool: asyncpg.Pool,
    name: str,
    change: Callable[[ChainConfig], ChainConfig],
) -> ChainRow | None:
    """Apply `change` to the stored config under a row lock, so concurrent PATCHes never lose one.

    `change` may raise to abort; nothing is written then. None if the chain does not exist.
    """
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(LOCK_CHAIN, name)
        if record is None:
            return None
        current = _row(record)
        updated = change(current.config)
        return _row(await conn.fetchrow(UPDATE_CONFIG, current.id, updated.model_dump_json()))


async def delete_chain(pool: asyncpg.Pool, name: str) -> bool:
    """Delete the chain, its blocks, transactions and indexed ranges; False if it did not exist."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(LOCK_CHAIN, name)
        if record is None:
            return False
        await conn.execute(DELETE_TRANSACTIONS, record["id"])
        await conn.execute(DELETE_CHAIN, record["id"])
        return True


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
    records: list[Any] = await conn.fetch(RANGES_FROM, chain_id, lower, head, limit + 2)
    gaps: list[tuple[int, int]] = []
    cursor = lower
    for record in records:
        start, end = max(record["start_block"], lower), min(record["end_block"], head)
        if start > cursor:
            gaps.append((cursor, start - 1))
        cursor = end + 1
    truncated = len(records) == limit + 2
    if not truncated and cursor <= head:
        gaps.append((cursor, head))
    if after is not None:
        # A gap that starts at or before `after` was on an earlier page.
        gaps = [gap for gap in gaps if gap[0] > after]
    return gaps[:limit], truncated or len(gaps) > limit
