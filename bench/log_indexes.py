"""What the logs table's secondary indexes cost the bulk COPY (issue 13).

Mainnet-shaped logs (150 transactions a block, 0-4 logs each, about 2 on average; 1-4
topics of 32 bytes; 0-256 bytes of data; addresses and event signatures skewed towards a few
popular contracts and events, as on mainnet) are COPYed in store_range's own text format,
one COPY and commit per batch of 100 blocks, into an empty logs table of a fresh database,
with each index set in turn. The variants are interleaved within each run (the order rotates),
so machine noise hits them alike; the ratio is taken within the same run.

    nice -n 19 /work/main/.venv/bin/python bench/log_indexes.py \\
        --database-url postgresql://root@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import provenance, write_result
from indexer.chain.model import Block, Log, Receipt, Transaction
from indexer.store.db import create_pool
from indexer.store.rows import LOG_COLUMNS, log_lines

TXS_PER_BLOCK = 150
BLOCKS_PER_COPY = 100
# The schema's (address; store/schema.py, migration 2) and the candidate it left out (topic0),
# alone and together, against none. The migration creates logs_address: it is dropped first.
INDEXES = {
    "address": "CREATE INDEX logs_address ON logs (chain_id, address, block_number)",
    "topic0": "CREATE INDEX logs_topic0 ON logs (chain_id, topic0, block_number)",
}
VARIANTS: dict[str, tuple[str, ...]] = {
    "primary_key_only": (),
    "plus_address": ("address",),
    "plus_topic0": ("topic0",),
    "plus_address_and_topic0": ("address", "topic0"),
}


def _hex(rng: random.Random, size: int) -> str:
    return rng.randbytes(size).hex()


def mainnet_blocks(log_count: int, seed: int = 13) -> list[Block]:
    """Blocks of 150 transactions with about 2 logs each, until `log_count` logs."""
    rng = random.Random(seed)
    contracts = [_hex(rng, 20) for _ in range(5_000)]
    events = [_hex(rng, 32) for _ in range(300)]
    blocks: list[Block] = []
    logs_made = 0
    number = 0
    while logs_made < log_count:
        transactions = []
        log_index = 0
        for position in range(TXS_PER_BLOCK):
            tx_hash = _hex(rng, 32)
            logs = []
            for _ in range(rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4, 2))):
                if logs_made == log_count:
                    break
                # Pareto-skewed: a few contracts (tokens, pools) and events (Transfer, Swap)
                # carry most logs.
                address = contracts[min(int(rng.paretovariate(1.2)) - 1, len(contracts) - 1)]
                topic0 = events[min(int(rng.paretovariate(1.5)) - 1, len(events) - 1)]
                topics = [topic0] + [_hex(rng, 32) for _ in range(rng.randint(0, 3))]
                data = _hex(rng, 32 * rng.randint(0, 8))
                logs.append(Log(log_index, position, tx_hash, address, topics, data))
                log_index += 1
                logs_made += 1
            receipt = Receipt(position, tx_hash, "", number, 1, 21_000, 21_000, 1, None, logs)
            transactions.append(
                Transaction(tx_hash, position, _hex(rng, 20), None, 0, None, None, None)
            )
            transactions[-1].receipt = receipt
        blocks.append(Block(number, "", "", 0, None, None, None, None, transactions))
        number += 1
    return blocks


async def _reset(conn: asyncpg.Connection, indexes: tuple[str, ...]) -> None:
    await conn.execute("TRUNCATE logs")
    await conn.execute("DROP INDEX IF EXISTS logs_address, logs_topic0")
    for name in indexes:
        await conn.execute(INDEXES[name])
    await conn.execute("CHECKPOINT")


async def _load(conn: asyncpg.Connection, batches: list[bytes]) -> float:
    """Seconds to COPY every batch, one transaction each, as store_range does."""
    began = time.perf_counter()
    for rows in batches:
        async with conn.transaction():
            await conn.copy_to_table(
                "logs", source=io.BytesIO(rows), columns=LOG_COLUMNS, format="text"
            )
    return time.perf_counter() - began


INDEX_SIZES = """
SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes
  FROM pg_class c
 WHERE c.relname IN ('logs', 'logs_pkey', 'logs_address', 'logs_topic0')
"""


async def measure(admin_url: str, rows: int, runs: int) -> dict[str, Any]:
    blocks = mainnet_blocks(rows)
    began = time.perf_counter()
    batches = [
        log_lines(1, blocks[i : i + BLOCKS_PER_COPY])
        for i in range(0, len(blocks), BLOCKS_PER_COPY)
    ]
    build_seconds = time.perf_counter() - began
    name = f"tindexer_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        pool = await create_pool(url, max_size=1)  # the schema, migrated as the indexer does
        seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        sizes: dict[str, dict[str, int]] = {}
        order = list(VARIANTS)
        async with pool.acquire() as conn:
            server_version = await conn.fetchval("SHOW server_version")
            for run in range(runs):
                for variant in order[run % len(order) :] + order[: run % len(order)]:
                    await _reset(conn, VARIANTS[variant])
                    took = await _load(conn, batches)
                    seconds[variant].append(round(took, 3))
                    sizes[variant] = {r["name"]: r["bytes"] for r in await conn.fetch(INDEX_SIZES)}
                    print(f"run {run + 1} {variant}: {took:.2f} s", flush=True)
        await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    base = statistics.median(seconds["primary_key_only"])
    return {
        "server_version": server_version,
        "rows": rows,
        "blocks": len(blocks),
        "copies": len(batches),
        "copy_bytes": sum(len(b) for b in batches),
        "line_build_seconds": round(build_seconds, 3),
        "runs": runs,
        "variants": {
            variant: {
                "seconds": took,
                "median_seconds": statistics.median(took),
                "rows_per_second": round(rows / statistics.median(took)),
                "time_vs_primary_key_only": round(statistics.median(took) / base, 3),
                # each run's ratio against the primary-key-only load of the same run
                "per_run_ratio": [
                    round(t / b, 3) for t, b in zip(took, seconds["primary_key_only"], strict=True)
                ],
                "relation_bytes": sizes[variant],
            }
            for variant, took in seconds.items()
        },
    }


def _memory_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://root@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    command = (
        f"nice -n 19 .venv/bin/python bench/log_indexes.py --database-url {args.database_url}"
        f" --rows {args.rows} --runs {args.runs}"
    )
    result = {"benchmark": "logs secondary indexes: cost to the bulk COPY", **provenance(command)}
    result["machine"]["memory_bytes"] = _memory_bytes()
    result.update(asyncio.run(measure(args.database_url, args.rows, args.runs)))
    print(write_result("log_indexes", result))


if __name__ == "__main__":
    main()
