"""Table layout for a chain's lifetime: blocks, transactions and logs unpartitioned (today's
schema) vs range-partitioned by block number (issue 14, item 3). The schema is not changed:
this measures, the lead decides.

Two fresh databases on one PostgreSQL, both migrated to today's schema; in the second, blocks,
transactions and logs are rebuilt as `PARTITION BY RANGE (block number)` with the same columns,
primary keys, secondary indexes (transactions_hash, logs_address) and foreign key, and
partitions of `--partition-blocks` (1,000,000) created ahead for `--chain-blocks`
(20,000,000, about mainnet's height). Then, in both:

  * COPY: `--segments` (8) segments of `--segment-blocks` (1,000) mainnet-profile blocks
    (~150 transactions with receipts, ~300 logs each), spread over the chain's height (segment
    i starts at i x chain_blocks / segments, so every segment lands in another partition), are
    COPYed in store_batch's own text rows, `--copy-blocks` (100) blocks per transaction, the
    two layouts alternating segment by segment (the order flips each segment) so machine noise
    hits both alike. Rows/s are timed over the COPY transactions alone;
  * reorg: delete_from (the store's own) of the newest `--reorg-blocks` (64) blocks, timed in
    a transaction rolled back each time (median of `--repeats`), and its logs DELETE EXPLAINed;
  * query: one contract's logs over a block range (the most frequent address, over one
    segment) — median of `--repeats`, and EXPLAIN ANALYZE with the literal values, which shows
    the partitions the plan keeps; the same for a transaction by hash, which no block number
    prunes (every partition's hash index is probed).

Rows come from the simulated chain's mainnet profile (64 distinct block contents, fetched and
decoded once through the Fetcher, renumbered per block).

    nice -n 19 .venv/bin/python bench/partitioning.py \\
        --database-url postgresql://root@127.0.0.1:5432/postgres      # or `make bench-partitioning`
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import provenance, scratch_directory, write_result

TABLES = {"blocks": "number", "transactions": "block_number", "logs": "block_number"}
SLOTS = 64  # the mainnet profile's distinct block contents


async def templates(chain_id: int) -> dict[str, list[list[str]]]:
    """For each table, each of the 64 distinct mainnet blocks' COPY lines (block number k)."""
    from indexer.activities.chain_cache import rpc_settings
    from indexer.chain.fetcher import Fetcher
    from indexer.config import ChainConfig
    from indexer.embedded import child_process, free_port, sim_chain_args
    from indexer.store.rows import block_lines, log_lines, transaction_lines

    port = free_port()
    work = scratch_directory("tindexer-partitioning-")
    args = sim_chain_args(port, backlog=SLOTS + 1, block_time=0, profile="mainnet")
    with child_process(args, "127.0.0.1", port, log_path=work / "sim.log"):
        url = f"http://127.0.0.1:{port}"
        client = Fetcher.for_url(url, "t", rpc_settings(ChainConfig(name="t", rpc_url=url)))
        blocks = await client.get_blocks(0, SLOTS - 1, receipts=True)
        await client.close()
    out: dict[str, list[list[str]]] = {"blocks": [], "transactions": [], "logs": []}
    for block in blocks:
        out["blocks"].append(block_lines(chain_id, [block]).decode().splitlines())
        out["transactions"].append(
            transaction_lines(chain_id, [block], receipts=True).decode().splitlines()
        )
        out["logs"].append(log_lines(chain_id, [block]).decode().splitlines())
    return out


def batch_rows(
    lines: dict[str, list[list[str]]], chain_id: int, start: int, end: int
) -> dict[str, bytes]:
    """COPY text of blocks start..end: template (number mod 64) with its block number set."""
    out = {}
    for table, by_slot in lines.items():
        parts = []
        for number in range(start, end + 1):
            slot = number % SLOTS
            old, new = f"{chain_id}\t{slot}\t", f"{chain_id}\t{number}\t"
            parts += [new + line[len(old) :] for line in by_slot[slot]]
        out[table] = ("\n".join(parts) + "\n").encode()
    return out


async def fresh_database(admin_url: str, tag: str) -> str:
    name = f"partitioning_{tag}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


async def drop_database(admin_url: str, url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path[1:]} WITH (FORCE)")
    finally:
        await conn.close()


def partition_ddl(partition_blocks: int, chain_blocks: int) -> list[str]:
    """Today's blocks, transactions and logs rebuilt range-partitioned, partitions ahead."""
    ddl = []
    for table, key in TABLES.items():
        ddl += [
            f"ALTER TABLE {table} RENAME TO {table}_flat",
            f"ALTER INDEX IF EXISTS {table}_pkey RENAME TO {table}_flat_pkey",
            f"CREATE TABLE {table} (LIKE {table}_flat INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            f" PARTITION BY RANGE ({key})",
            f"ALTER TABLE {table} ADD PRIMARY KEY "
            + (
                "(chain_id, number)"
                if table == "blocks"
                else "(chain_id, block_number, tx_index)"
                if table == "transactions"
                else "(chain_id, block_number, log_index)"
            ),
        ]
        for low in range(0, chain_blocks, partition_blocks):
            ddl.append(
                f"CREATE TABLE {table}_p{low // partition_blocks:03d} PARTITION OF {table}"
                f" FOR VALUES FROM ({low}) TO ({low + partition_blocks})"
            )
        ddl.append(f"DROP TABLE {table}_flat")
    ddl += [
        "ALTER TABLE blocks ADD FOREIGN KEY (chain_id) REFERENCES chains (id) ON DELETE CASCADE",
        "CREATE INDEX transactions_hash ON transactions (hash)",
        "CREATE INDEX logs_address ON logs (chain_id, address, block_number)",
    ]
    return ddl


async def setup(url: str, partitioned: bool, partition_blocks: int, chain_blocks: int) -> int:
    from indexer.store.schema import migrate

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        if partitioned:
            async with conn.transaction():
                for statement in partition_ddl(partition_blocks, chain_blocks):
                    await conn.execute(statement)
        chain_id: int = await conn.fetchval(
            "INSERT INTO chains (name, config) VALUES ('bench', '{}') RETURNING id"
        )
    finally:
        await conn.close()
    return chain_id


async def copy_segment(
    conn: asyncpg.Connection,
    lines: dict[str, list[list[str]]],
    chain_id: int,
    start: int,
    blocks: int,
    per_copy: int,
) -> tuple[float, dict[str, int]]:
    """COPY blocks start..start+blocks-1, `per_copy` a transaction; (seconds in COPY, rows)."""
    from indexer.store.rows import BLOCK_COLUMNS, LOG_COLUMNS, TRANSACTION_COLUMNS

    columns = {"blocks": BLOCK_COLUMNS, "transactions": TRANSACTION_COLUMNS, "logs": LOG_COLUMNS}
    seconds = 0.0
    rows = dict.fromkeys(TABLES, 0)
    for low in range(start, start + blocks, per_copy):
        data = batch_rows(lines, chain_id, low, min(low + per_copy, start + blocks) - 1)
        for table, payload in data.items():
            rows[table] += payload.count(b"\n")
        began = time.perf_counter()
        async with conn.transaction():
            for table, payload in data.items():
                await conn.copy_to_table(
                    table, source=io.BytesIO(payload), columns=columns[table], format="text"
                )
        seconds += time.perf_counter() - began
    return seconds, rows


async def timed(repeats: int, run: Any) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        await run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def measure_reads(
    url: str, chain_id: int, newest: tuple[int, int], query_range: tuple[int, int], repeats: int
) -> dict[str, Any]:
    """Reorg delete of the newest blocks (rolled back), the contract query, a hash lookup."""
    from indexer.store.blocks import delete_from

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
        address = await conn.fetchval(
            "SELECT address FROM logs WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3"
            " GROUP BY address ORDER BY count(*) DESC, address LIMIT 1",
            chain_id,
            *query_range,
        )
        tx_hash = await conn.fetchval(
            "SELECT hash FROM transactions WHERE chain_id = $1 AND block_number = $2 LIMIT 1",
            chain_id,
            query_range[0] + 7,
        )

        class Rollback(Exception):
            pass

        async def reorg() -> None:
            try:
                async with conn.transaction():
                    await delete_from(conn, chain_id, *newest)
                    raise Rollback
            except Rollback:
                pass

        query = (
            "SELECT block_number, log_index, topic0, data FROM logs"
            " WHERE chain_id = $1 AND address = $2 AND block_number BETWEEN $3 AND $4"
        )
        matched = len(await conn.fetch(query, chain_id, address, *query_range))

        async def contract_logs() -> None:
            await conn.fetch(query, chain_id, address, *query_range)

        async def by_hash() -> None:
            await conn.fetch("SELECT * FROM transactions WHERE hash = $1", tx_hash)

        literal = f"'\\x{address.hex()}'::bytea"
        explain_query = (
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT block_number,"
            f" log_index, topic0, data FROM logs WHERE chain_id = {chain_id} AND address ="
            f" {literal} AND block_number BETWEEN {query_range[0]} AND {query_range[1]}"
        )
        explain_hash = (
            "EXPLAIN (COSTS OFF) SELECT * FROM transactions WHERE hash ="
            f" '\\x{bytes(tx_hash).hex()}'::bytea"
        )
        explain_delete = (
            f"EXPLAIN (COSTS OFF) DELETE FROM logs WHERE chain_id = {chain_id}"
            f" AND block_number BETWEEN {newest[0]} AND {newest[1]}"
        )
        plans = {}
        for name, statement in (
            ("query", explain_query),
            ("hash", explain_hash),
            ("delete", explain_delete),
        ):
            rows = await conn.fetch(statement)
            plans[name] = "\n".join(r[0] for r in rows)
        reorg_seconds = await timed(repeats, reorg)
        query_seconds = await timed(repeats, contract_logs)
        hash_seconds = await timed(repeats, by_hash)
        sizes = {
            table: await conn.fetchval(
                "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))"
                " FROM pg_partition_tree($1::regclass)), pg_total_relation_size($1::regclass))",
                table,
            )
            for table in TABLES
        }
    finally:
        await conn.close()
    return {
        "reorg_delete_ms": round(reorg_seconds * 1e3, 2),
        "contract_logs_ms": round(query_seconds * 1e3, 3),
        "contract_logs_rows": matched,
        "tx_by_hash_ms": round(hash_seconds * 1e3, 3),
        "table_bytes": {k: int(v) for k, v in sizes.items()},
        "explain": plans,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres"),
        help="a server where fresh databases may be created (and are dropped afterwards)",
    )
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--segment-blocks", type=int, default=1_000)
    parser.add_argument("--copy-blocks", type=int, default=100, help="blocks per COPY commit")
    parser.add_argument("--partition-blocks", type=int, default=1_000_000)
    parser.add_argument("--chain-blocks", type=int, default=20_000_000)
    parser.add_argument("--reorg-blocks", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    command = " ".join(["make bench-partitioning (.venv/bin/python bench/partitioning.py"])
    result: dict[str, Any] = provenance(" ".join([command, *sys.argv[1:]]) + ")")
    layouts = ("unpartitioned", "partitioned")
    urls = {layout: await fresh_database(args.database_url, layout[:4]) for layout in layouts}
    try:
        chain_ids = {
            layout: await setup(
                urls[layout], layout == "partitioned", args.partition_blocks, args.chain_blocks
            )
            for layout in layouts
        }
        assert chain_ids["unpartitioned"] == chain_ids["partitioned"]
        chain_id = chain_ids["partitioned"]
        server = await asyncpg.connect(args.database_url)
        version = await server.fetchval("SHOW server_version")
        await server.close()
        print("drawing mainnet-profile rows …", flush=True)
        lines = await templates(chain_id)
        stride = args.chain_blocks // args.segments
        starts = [i * stride for i in range(args.segments)]
        copy_seconds = dict.fromkeys(layouts, 0.0)
        per_segment: dict[str, list[float]] = {layout: [] for layout in layouts}
        rows: dict[str, int] = {}
        conns = {layout: await asyncpg.connect(urls[layout]) for layout in layouts}
        for number, start in enumerate(starts):
            order = layouts if number % 2 == 0 else layouts[::-1]
            for layout in order:
                seconds, rows = await copy_segment(
                    conns[layout], lines, chain_id, start, args.segment_blocks, args.copy_blocks
                )
                copy_seconds[layout] += seconds
                per_segment[layout].append(round(seconds, 3))
            print(
                f"  segment {number + 1}/{args.segments} at {start:,}: "
                + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in per_segment.items()),
                flush=True,
            )
        for conn in conns.values():
            await conn.close()
        total_rows = {table: count * args.segments for table, count in rows.items()}
        all_rows = sum(total_rows.values())
        newest_end = starts[-1] + args.segment_blocks - 1
        newest = (newest_end - args.reorg_blocks + 1, newest_end)
        query_range = (starts[len(starts) // 2], starts[len(starts) // 2] + args.segment_blocks - 1)
        reads = {
            layout: await measure_reads(urls[layout], chain_id, newest, query_range, args.repeats)
            for layout in layouts
        }
    finally:
        for url in urls.values():
            await drop_database(args.database_url, url)

    def row(measure: str, unp: float, part: float) -> dict[str, Any]:
        return {
            "measure": measure,
            "unpartitioned": unp,
            "partitioned": part,
            "ratio": round(part / unp, 3) if unp else None,
        }

    rows_per_second = {k: round(all_rows / v) for k, v in copy_seconds.items()}
    blocks = args.segments * args.segment_blocks
    table = [
        row("COPY rows/s (blocks + transactions + logs)", *rows_per_second.values()),
        row(
            "COPY blocks/s",
            *(round(blocks / copy_seconds[layout], 1) for layout in layouts),
        ),
        row(
            f"reorg delete_from of the newest {args.reorg_blocks} blocks, ms (median)",
            *(reads[layout]["reorg_delete_ms"] for layout in layouts),
        ),
        row(
            f"one contract's logs over {args.segment_blocks:,} blocks, ms (median)",
            *(reads[layout]["contract_logs_ms"] for layout in layouts),
        ),
        row(
            "one transaction by hash, ms (median)",
            *(reads[layout]["tx_by_hash_ms"] for layout in layouts),
        ),
        row(
            "total bytes of blocks + transactions + logs",
            *(sum(reads[layout]["table_bytes"].values()) for layout in layouts),
        ),
    ]
    partitions = args.chain_blocks // args.partition_blocks
    result.update(
        {
            "postgres": version,
            "setup": (
                f"{args.segments} segments of {args.segment_blocks:,} mainnet-profile blocks "
                f"({total_rows['transactions']:,} transactions, {total_rows['logs']:,} logs) "
                f"spread over {args.chain_blocks:,} block numbers; partitioned: {partitions} "
                f"partitions of {args.partition_blocks:,} blocks per table, created ahead; "
                f"COPY {args.copy_blocks} blocks a transaction, layouts alternating; reads "
                f"medians of {args.repeats}."
            ),
            "blocks": blocks,
            "rows": total_rows,
            "partition_blocks": args.partition_blocks,
            "chain_blocks": args.chain_blocks,
            "partitions_per_table": partitions,
            "copy_seconds": {k: round(v, 3) for k, v in copy_seconds.items()},
            "copy_seconds_per_segment": per_segment,
            "copy_rows_per_second": rows_per_second,
            "reorg_range": list(newest),
            "query_range": list(query_range),
            "reads": {k: {m: v for m, v in r.items() if m != "explain"} for k, r in reads.items()},
            "table": table,
            "explain": {layout: reads[layout]["explain"]["query"] for layout in layouts},
            "explain_delete": {layout: reads[layout]["explain"]["delete"] for layout in layouts},
            "explain_tx_by_hash": {layout: reads[layout]["explain"]["hash"] for layout in layouts},
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
    )
    path = write_result("partitioning", result)
    for line in table:
        print(f"  {line['measure']}: {line['unpartitioned']:,} vs {line['partitioned']:,}"
              f" ({line['ratio']}x)")  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
