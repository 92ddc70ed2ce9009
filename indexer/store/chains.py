"""The `chains` table: each chain's configuration (so the admin API can change it) and head."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from indexer.config import ChainConfig


@dataclass(frozen=True)
class ChainRow:
    id: int
    config: ChainConfig
    head: int | None


# What every query that returns a chain row selects; _row reads exactly these.
CHAIN_COLUMNS = "id, config::text AS config, head"


def _row(record: asyncpg.Record) -> ChainRow:
    return ChainRow(
        id=record["id"],
        config=ChainConfig.model_validate_json(record["config"]),
        head=record["head"],
    )


UPSERT_CHAIN = f"""
INSERT INTO chains (name, config) VALUES ($1, $2::jsonb)
    ON CONFLICT (name) DO UPDATE SET config = EXCLUDED.config, updated_at = now()
RETURNING {CHAIN_COLUMNS}
"""


async def upsert_chain(conn: asyncpg.Connection | asyncpg.Pool, config: ChainConfig) -> ChainRow:
    """Insert the chain or replace its configuration; its id and indexed data stay."""
    return _row(await conn.fetchrow(UPSERT_CHAIN, config.name, config.model_dump_json()))


INSERT_CHAIN = f"""
INSERT INTO chains (name, config) VALUES ($1, $2::jsonb)
    ON CONFLICT (name) DO NOTHING
RETURNING {CHAIN_COLUMNS}
"""


async def insert_chain(
    conn: asyncpg.Connection | asyncpg.Pool, config: ChainConfig
) -> ChainRow | None:
    """Create the chain; None if one of that name exists (nothing is changed then)."""
    record = await conn.fetchrow(INSERT_CHAIN, config.name, config.model_dump_json())
    return _row(record) if record else None


GET_CHAIN = f"""
SELECT {CHAIN_COLUMNS}
  FROM chains
 WHERE name = $1
"""


async def get_chain(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> ChainRow | None:
    record = await conn.fetchrow(GET_CHAIN, name)
    return _row(record) if record else None


LIST_CHAINS = f"""
SELECT {CHAIN_COLUMNS}
  FROM chains
 ORDER BY name
"""


async def list_chains(conn: asyncpg.Connection | asyncpg.Pool) -> list[ChainRow]:
    records = await conn.fetch(LIST_CHAINS)
    return [_row(r) for r in records]


# GREATEST ignores NULL: the first head is taken as it is.
SET_HEAD = """
UPDATE chains SET head = GREATEST(head, $2), head_updated_at = now()
 WHERE id = $1
RETURNING head
"""


async def set_head(conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, head: int) -> int:
    """Record a head the provider answered; returns the chain's head, the highest ever recorded.

    The head never goes back: a provider answering below it is lagging or resyncing (a reorg
    keeps the chain's height), and status must not show stored blocks above the head.
    """
    recorded = await conn.fetchval(SET_HEAD, chain_id, head)
    return head if recorded is None else int(recorded)  # None: the chain was just deleted


# The chain row, locked until the transaction ends: update_chain and delete_chain take it first.
LOCK_CHAIN = GET_CHAIN + "   FOR UPDATE\n"

UPDATE_CONFIG = f"""
UPDATE chains SET config = $2::jsonb, updated_at = now()
 WHERE id = $1
RETURNING {CHAIN_COLUMNS}
"""


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


# transactions has no foreign key to chains; blocks and indexed_ranges cascade.
DELETE_TRANSACTIONS = "DELETE FROM transactions WHERE chain_id = $1"
DELETE_CHAIN = "DELETE FROM chains WHERE id = $1"


async def delete_chain(pool: asyncpg.Pool, name: str) -> bool:
    """Delete the chain, its blocks, transactions and indexed ranges; False if it did not exist."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(LOCK_CHAIN, name)
        if record is None:
            return False
        await conn.execute(DELETE_TRANSACTIONS, record["id"])
        await conn.execute(DELETE_CHAIN, record["id"])
        return True
