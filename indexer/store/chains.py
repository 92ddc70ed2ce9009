"""The `chains` table: each chain's configuration (so the admin API can change it) and head."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from indexer.config import BIGINT_MAX, ChainConfig
from indexer.store.ranges import rebuild_indexed_ranges


@dataclass(frozen=True)
class ChainRow:
    id: int
    config: ChainConfig
    head: int | None
    finalized: int | None = None  # the final block at the last reorg check (finality knob)
    evm_chain_id: int | None = None  # the chain id its providers proved (pinned when learned)


# What every query that returns a chain row selects; _row reads exactly these.
CHAIN_COLUMNS = "id, config::text AS config, head, finalized, evm_chain_id"


def _row(record: asyncpg.Record) -> ChainRow:
    return ChainRow(
        id=record["id"],
        config=ChainConfig.model_validate_json(record["config"]),
        head=record["head"],
        finalized=record["finalized"],
        evm_chain_id=record["evm_chain_id"],
    )


UPSERT_CHAIN = f"""
INSERT INTO chains (name, config) VALUES ($1, $2::jsonb)
    ON CONFLICT (name) DO UPDATE SET config = EXCLUDED.config, updated_at = now()
RETURNING {CHAIN_COLUMNS}
"""


async def _datasets_changed(
    conn: asyncpg.Connection, chain_id: int, before: ChainConfig, after: ChainConfig
) -> None:
    """A chain that gains a dataset: its indexed ranges shrink to the blocks holding them all.

    The scheduler's gap walk then re-indexes exactly the blocks lacking the new dataset, through
    the same range workflows. Losing a dataset changes nothing stored.
    """
    if not set(after.datasets) <= set(before.datasets):
        await rebuild_indexed_ranges(conn, chain_id, after.datasets)


async def upsert_chain(conn: asyncpg.Connection | asyncpg.Pool, config: ChainConfig) -> ChainRow:
    """Insert the chain or replace its configuration; its id and indexed data stay.

    A config that does not set `datasets` keeps an existing chain's: a configuration file from
    before datasets existed must not re-index everything on an upgrade. A new chain gets the
    default (all of them).
    """
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as connection:
            return await upsert_chain(connection, config)
    async with conn.transaction():
        record = await conn.fetchrow(LOCK_CHAIN, config.name)
        before = _row(record) if record else None
        if before is not None and "datasets" not in config.model_fields_set:
            config = config.model_copy(update={"datasets": before.config.datasets})
        row = _row(await conn.fetchrow(UPSERT_CHAIN, config.name, config.model_dump_json()))
        if before is not None:
            await _datasets_changed(conn, row.id, before.config, row.config)
        return row


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


# A deleted chain's row stays, renamed RETIRED_PREFIX || id, until its data is purged in batches:
# no chain name starts with "#", so its old name is free at once and lookups by name miss it.
RETIRED_PREFIX = "#deleted:"

LIST_CHAINS = f"""
SELECT {CHAIN_COLUMNS}
  FROM chains
 WHERE name NOT LIKE '#%'
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


# Down to the verified head, never below a stored block (status never shows one above the head).
LOWER_HEAD = """
UPDATE chains
   SET head = GREATEST($2, (SELECT max(number) FROM blocks WHERE chain_id = $1)),
       head_updated_at = now()
 WHERE id = $1
RETURNING head
"""


async def lower_head(conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, head: int) -> int:
    """Take back a stored head that no provider serves (a bogus claim once adopted): the
    chain's head becomes `head`, or the highest stored block if that is higher."""
    recorded = await conn.fetchval(LOWER_HEAD, chain_id, head)
    return head if recorded is None else int(recorded)


PIN_CHAIN_ID = """
UPDATE chains SET evm_chain_id = $2 WHERE id = $1 AND evm_chain_id IS DISTINCT FROM $2
"""


async def pin_chain_id(conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, evm: int) -> None:
    """Store the chain id the chain's providers proved (its chain_id knob, or their majority)."""
    await conn.execute(PIN_CHAIN_ID, chain_id, evm)


SET_FINALIZED = "UPDATE chains SET finalized = $2 WHERE id = $1"


async def set_finalized(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, finalized: int | None
) -> None:
    """Record the chain's final block at the last reorg check (None: nothing is final)."""
    await conn.execute(SET_FINALIZED, chain_id, finalized)


# The chain row, locked until the transaction ends: update_chain takes it first.
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

    A dataset gained narrows the indexed ranges as in `upsert_chain`, in the same transaction.

    `change` may raise to abort; nothing is written then. None if the chain does not exist.
    """
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(LOCK_CHAIN, name)
        if record is None:
            return None
        current = _row(record)
        updated = change(current.config)
        row = _row(await conn.fetchrow(UPDATE_CONFIG, current.id, updated.model_dump_json()))
        await _datasets_changed(conn, row.id, current.config, row.config)
        return row


RETIRE_CHAIN = """
UPDATE chains SET name = $2::text || id, updated_at = now()
 WHERE name = $1
RETURNING id
"""


async def retire_chain(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int | None:
    """Hide the chain at once (one short statement): its name is free, workers find it unknown.

    Returns its id for `purge_batch`, or None if no chain has that name.
    """
    chain_id: int | None = await conn.fetchval(RETIRE_CHAIN, name, RETIRED_PREFIX)
    return chain_id


RETIRED_CHAINS = """
SELECT id
  FROM chains
 WHERE name LIKE '#%'
 ORDER BY id
"""


async def retired_chains(conn: asyncpg.Connection | asyncpg.Pool) -> list[int]:
    """Ids of deleted chains whose data is not purged yet (a purge resumes from these)."""
    return [record["id"] for record in await conn.fetch(RETIRED_CHAINS)]


# The rows of a chain, by table and block column; only blocks have a foreign key to chains.
CHAIN_DATA = (
    ("logs", "block_number"),
    ("withdrawals", "block_number"),
    ("transactions", "block_number"),
    ("blocks", "number"),
)
OLDEST_BLOCK = "SELECT least({})".format(
    ", ".join(
        f"(SELECT min({column}) FROM {table} WHERE chain_id = $1)" for table, column in CHAIN_DATA
    )
)
DELETE_THROUGH = [
    f"DELETE FROM {table} WHERE chain_id = $1 AND {column} <= $2" for table, column in CHAIN_DATA
]
IS_RETIRED = "SELECT EXISTS (SELECT FROM chains WHERE id = $1 AND name LIKE '#%')"
# Taken before the last step: a writer still storing blocks of the chain holds FOR KEY SHARE on
# the row (the foreign key) and is waited for; one that comes later fails its key check.
LOCK_RETIRED = "SELECT id FROM chains WHERE id = $1 AND name LIKE '#%' FOR UPDATE"
DELETE_RANGES = "DELETE FROM indexed_ranges WHERE chain_id = $1"
DELETE_CHAIN = "DELETE FROM chains WHERE id = $1"


async def purge_batch(pool: asyncpg.Pool, chain_id: int, batch_blocks: int) -> bool:
    """Delete the oldest `batch_blocks` blocks' rows of a retired chain in one short transaction.

    Once no rows are left, delete its indexed ranges and its row. True while more remains.
    """
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(IS_RETIRED, chain_id):
            return False  # purged already, or a live chain: never touch its rows
        oldest = await conn.fetchval(OLDEST_BLOCK, chain_id)
        if oldest is None:
            if await conn.fetchval(LOCK_RETIRED, chain_id) is None:
                return False
            oldest = await conn.fetchval(OLDEST_BLOCK, chain_id)
            if oldest is None:
                await conn.execute(DELETE_RANGES, chain_id)
                await conn.execute(DELETE_CHAIN, chain_id)
                return False
        last = min(oldest + batch_blocks - 1, BIGINT_MAX)
        for statement in DELETE_THROUGH:
            await conn.execute(statement, chain_id, last)
        return True
