"""Schema migrations, applied in order on start under an advisory lock."""

from __future__ import annotations

import asyncpg

MIGRATIONS: list[str] = [
    # 1: the four tables of DESIGN.md.
    """
    CREATE TABLE chains (
        id              serial PRIMARY KEY,
        name            text NOT NULL UNIQUE,
        evm_chain_id    bigint,
        config          jsonb NOT NULL,
        head            bigint,
        head_updated_at timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE blocks (
        chain_id         integer NOT NULL REFERENCES chains (id) ON DELETE CASCADE,
        number           bigint  NOT NULL,
        hash             bytea   NOT NULL,
        parent_hash      bytea   NOT NULL,
        timestamp        bigint  NOT NULL,
        miner            bytea,
        gas_used         numeric,
        gas_limit        numeric,
        base_fee_per_gas numeric,
        tx_count         integer NOT NULL,
        PRIMARY KEY (chain_id, number)
    );
    CREATE TABLE transactions (
        chain_id     integer NOT NULL,
        block_number bigint  NOT NULL,
        tx_index     integer NOT NULL,
        hash         bytea   NOT NULL,
        from_address bytea   NOT NULL,
        to_address   bytea,
        value        numeric NOT NULL,
        gas          numeric,
        gas_price    numeric,
        nonce        numeric,
        PRIMARY KEY (chain_id, block_number, tx_index)
    );
    CREATE INDEX transactions_hash ON transactions (hash);
    CREATE TABLE indexed_ranges (
        chain_id    integer NOT NULL REFERENCES chains (id) ON DELETE CASCADE,
        start_block bigint  NOT NULL,
        end_block   bigint  NOT NULL,
        CHECK (start_block <= end_block),
        PRIMARY KEY (chain_id, start_block)
    );
    CREATE INDEX indexed_ranges_end ON indexed_ranges (chain_id, end_block);
    """,
]

MIGRATION_LOCK = 7_204_117  # any constant; serialises concurrent migrators

LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock($1)"
CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM schema_migrations"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version) VALUES ($1)"


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply every migration not yet applied; returns the schema version."""
    async with conn.transaction():
        await conn.execute(LOCK_MIGRATIONS, MIGRATION_LOCK)
        await conn.execute(CREATE_SCHEMA_MIGRATIONS)
        current = await conn.fetchval(SCHEMA_VERSION)
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version > current:
                await conn.execute(sql)
                await conn.execute(RECORD_MIGRATION, version)
    return len(MIGRATIONS)
