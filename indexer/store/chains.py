"""The `chains` table: each chain's configuration (so the admin API can change it) and head."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from indexer.config import ChainConfig


@dataclass(frozen=True)
class ChainRow:
    id: int
    config: ChainConfig
    head: int | None


def _row(record: asyncpg.Record) -> ChainRow:
    return ChainRow(
        id=record["id"],
        config=ChainConfig.model_validate_json(record["config"]),
        head=record["head"],
    )


async def upsert_chain(conn: asyncpg.Connection | asyncpg.Pool, config: ChainConfig) -> ChainRow:
    """Insert the chain or replace its configuration; its id and indexed data stay."""
    record = await conn.fetchrow(
        """
        INSERT INTO chains (name, config) VALUES ($1, $2::jsonb)
        ON CONFLICT (name) DO UPDATE SET config = EXCLUDED.config, updated_at = now()
        RETURNING id, config::text AS config, head
        """,
        config.name,
        config.model_dump_json(),
    )
    return _row(record)


async def get_chain(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> ChainRow | None:
    record = await conn.fetchrow(
        "SELECT id, config::text AS config, head FROM chains WHERE name = $1", name
    )
    return _row(record) if record else None


async def list_chains(conn: asyncpg.Connection | asyncpg.Pool) -> list[ChainRow]:
    records = await conn.fetch("SELECT id, config::text AS config, head FROM chains ORDER BY name")
    return [_row(r) for r in records]


async def set_head(conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, head: int) -> None:
    await conn.execute(
        "UPDATE chains SET head = $2, head_updated_at = now() WHERE id = $1", chain_id, head
    )
