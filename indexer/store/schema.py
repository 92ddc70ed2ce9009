"""Schema migrations, applied in order on start under an advisory lock; never edit one."""

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
    # 2: issue 13 — every header field, full transactions with their receipts, logs,
    # withdrawals, and the interval set of each dataset. Nullable columns without a default:
    # adding them rewrites no row. Chains that exist already keep what they indexed (blocks and
    # transactions): an upgrade never silently re-indexes everything.
    """
    ALTER TABLE blocks
        ADD COLUMN size                     bigint,
        ADD COLUMN extra_data               bytea,
        ADD COLUMN state_root               bytea,
        ADD COLUMN transactions_root        bytea,
        ADD COLUMN receipts_root            bytea,
        ADD COLUMN logs_bloom               bytea,
        ADD COLUMN sha3_uncles              bytea,
        ADD COLUMN mix_hash                 bytea,
        ADD COLUMN nonce                    bytea,
        ADD COLUMN difficulty               numeric,
        ADD COLUMN total_difficulty         numeric,
        ADD COLUMN blob_gas_used            numeric,
        ADD COLUMN excess_blob_gas          numeric,
        ADD COLUMN withdrawals_root         bytea,
        ADD COLUMN parent_beacon_block_root bytea,
        ADD COLUMN requests_hash            bytea;
    ALTER TABLE transactions
        ADD COLUMN input                    bytea,
        ADD COLUMN type                     smallint,
        ADD COLUMN max_fee_per_gas          numeric,
        ADD COLUMN max_priority_fee_per_gas numeric,
        ADD COLUMN max_fee_per_blob_gas     numeric,
        ADD COLUMN blob_versioned_hashes    bytea[],
        ADD COLUMN access_list              jsonb,
        ADD COLUMN status                   smallint,
        ADD COLUMN gas_used                 numeric,
        ADD COLUMN cumulative_gas_used      numeric,
        ADD COLUMN effective_gas_price      numeric,
        ADD COLUMN contract_address         bytea;
    -- Like transactions, no foreign key: a per-row key check would slow the bulk COPY, and
    -- the chain purge deletes these rows itself.
    CREATE TABLE logs (
        chain_id     integer NOT NULL,
        block_number bigint  NOT NULL,
        log_index    integer NOT NULL,
        tx_index     integer NOT NULL,
        tx_hash      bytea   NOT NULL,
        address      bytea   NOT NULL,
        topic0       bytea,
        topic1       bytea,
        topic2       bytea,
        topic3       bytea,
        data         bytea   NOT NULL,
        PRIMARY KEY (chain_id, block_number, log_index)
    );
    -- One contract's events by block range (topic0 is then filtered on few rows). An index on
    -- (chain_id, topic0, block_number), one event across all contracts, would make the logs
    -- COPY about 1.5x slower again (bench/results/log_indexes.json): a user who needs it
    -- can add it.
    CREATE INDEX logs_address ON logs (chain_id, address, block_number);
    CREATE TABLE withdrawals (
        chain_id        integer NOT NULL,
        block_number    bigint  NOT NULL,
        index           bigint  NOT NULL,
        validator_index bigint  NOT NULL,
        address         bytea   NOT NULL,
        amount          numeric NOT NULL,
        PRIMARY KEY (chain_id, block_number, index)
    );
    CREATE TABLE dataset_ranges (
        chain_id    integer NOT NULL REFERENCES chains (id) ON DELETE CASCADE,
        dataset     text    NOT NULL
                    CHECK (dataset IN ('blocks', 'transactions', 'receipts', 'logs')),
        start_block bigint  NOT NULL,
        end_block   bigint  NOT NULL,
        CHECK (start_block <= end_block),
        PRIMARY KEY (chain_id, dataset, start_block)
    );
    CREATE INDEX dataset_ranges_end ON dataset_ranges (chain_id, dataset, end_block);
    UPDATE chains SET config = jsonb_set(config, '{datasets}', '["blocks", "transactions"]');
    INSERT INTO dataset_ranges (chain_id, dataset, start_block, end_block)
    SELECT r.chain_id, d.dataset, r.start_block, r.end_block
      FROM indexed_ranges r
     CROSS JOIN (VALUES ('blocks'), ('transactions')) AS d (dataset);
    """,
    # 3: issue 15 — the chain's final block at the last reorg check (its finality knob), for
    # status; NULL while nothing is final (the default) or before the first check.
    """
    ALTER TABLE chains ADD COLUMN finalized bigint;
    """,
    # 4: issue 24 — when a head scan first saw each new block (store/sightings.py), for the
    # freshness SLI measured at commit, possibly by another worker process.
    """
    CREATE TABLE head_sightings (
        chain_id    integer     NOT NULL REFERENCES chains (id) ON DELETE CASCADE,
        first_block bigint      NOT NULL,
        last_block  bigint      NOT NULL,
        seen_at     timestamptz NOT NULL,
        CHECK (first_block <= last_block),
        PRIMARY KEY (chain_id, first_block)
    );
    CREATE INDEX head_sightings_seen ON head_sightings (chain_id, seen_at);
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
