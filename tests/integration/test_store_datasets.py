"""The store's datasets on a real PostgreSQL: every column back as written, receipts, logs and
withdrawals re-written with their blocks, datasets filled in later, and a chain's indexed
ranges narrowed when it gains a dataset."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from indexer.chain.model import Block
from indexer.config import ChainConfig
from indexer.datasets import DATASETS, Dataset
from indexer.progress import ChainStatus, DatasetStatus, chain_statuses, dataset_statuses
from indexer.store.blocks import delete_from, store_batch
from indexer.store.chains import (
    ChainRow,
    get_chain,
    purge_batch,
    retire_chain,
    set_head,
    update_chain,
    upsert_chain,
)
from indexer.store.db import create_pool
from indexer.store.ranges import coverage, dataset_blocks, dataset_coverage
from indexer.store.rows import BLOCK_COLUMNS, TRANSACTION_COLUMNS
from indexer.store.schema import CREATE_SCHEMA_MIGRATIONS, MIGRATIONS, RECORD_MIGRATION
from tests.support.rows import full_blocks

RECEIPT_COLUMNS = TRANSACTION_COLUMNS[-5:]
CHILD_TABLES = ("transactions", "logs", "withdrawals")


def _plain(value: Any) -> Any:
    """A column value as the model holds it: hex for bytes, int for numeric, parsed jsonb."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class Store:
    def __init__(self, pool: asyncpg.Pool, chain_id: int) -> None:
        self.pool, self.chain_id = pool, chain_id

    async def write(self, blocks: list[Block], datasets: Iterable[Dataset] = DATASETS) -> None:
        async with self.pool.acquire() as conn:
            await store_batch(conn, self.chain_id, blocks, datasets)

    async def rows(self) -> dict[str, dict[tuple[int, ...], tuple[Any, ...]]]:
        """Every row of the chain, by table, keyed by its primary key after chain_id."""
        queries = {
            "blocks": (f"SELECT {', '.join(BLOCK_COLUMNS)} FROM blocks", 2),
            "transactions": (f"SELECT {', '.join(TRANSACTION_COLUMNS)} FROM transactions", 3),
            "logs": (
                "SELECT chain_id, block_number, log_index, tx_index, tx_hash, address,"
                " topic0, topic1, topic2, topic3, data FROM logs",
                3,
            ),
            "withdrawals": (
                "SELECT chain_id, block_number, index, validator_index, address, amount"
                " FROM withdrawals",
                3,
            ),
        }
        result = {}
        for table, (query, key) in queries.items():
            records = await self.pool.fetch(query + " WHERE chain_id = $1", self.chain_id)
            plain = [tuple(_plain(v) for v in record.values()) for record in records]
            if table == "transactions":  # jsonb arrives as text
                at = TRANSACTION_COLUMNS.index("access_list")
                plain = [(*r[:at], r[at] and json.loads(r[at]), *r[at + 1 :]) for r in plain]
            result[table] = {r[1:key]: r[key:] for r in plain}
        return result

    async def versions(self) -> dict[str, set[tuple[str, str]]]:
        """(xmin, ctid) of every row: unchanged only if no row was written again."""
        return {
            table: {
                (r["xmin"], r["ctid"])
                for r in await self.pool.fetch(
                    f"SELECT xmin::text, ctid::text FROM {table} WHERE chain_id = $1",
                    self.chain_id,
                )
            }
            for table in ("blocks", *CHILD_TABLES)
        }

    async def ranges(self, table: str = "indexed_ranges") -> list[tuple[Any, ...]]:
        dataset = ", dataset" if table == "dataset_ranges" else ""
        records = await self.pool.fetch(
            f"SELECT start_block, end_block{dataset} FROM {table} WHERE chain_id = $1"
            f" ORDER BY {dataset[2:] + ', ' if dataset else ''}start_block",
            self.chain_id,
        )
        return [tuple(r.values()) for r in records]


def expected(
    blocks: list[Block], chain_id: int, datasets: Iterable[Dataset] = DATASETS
) -> dict[str, dict[tuple[int, ...], tuple[Any, ...]]]:
    """The rows `blocks` must leave, derived from the model field by field."""
    wanted = set(datasets)
    rows: dict[str, dict[tuple[int, ...], tuple[Any, ...]]] = {t: {} for t in ("blocks",)}
    rows.update({table: {} for table in CHILD_TABLES})
    for b in blocks:
        header = tuple(
            len(b.transactions) if column == "tx_count" else getattr(b, column)
            for column in BLOCK_COLUMNS[2:]
        )
        rows["blocks"][(b.number,)] = header
        for w in b.withdrawals or []:
            rows["withdrawals"][(b.number, w.index)] = (w.validator_index, w.address, w.amount)
        for tx in b.transactions:
            fields = tuple(
                getattr(tx, "from_address" if c == "from_address" else c)
                for c in TRANSACTION_COLUMNS[3:-5]
            )
            receipt = tx.receipt if "receipts" in wanted else None
            paid = (
                tuple(getattr(receipt, c) for c in RECEIPT_COLUMNS)
                if receipt
                else (None,) * len(RECEIPT_COLUMNS)
            )
            if "transactions" in wanted:
                rows["transactions"][(b.number, tx.tx_index)] = fields + paid
            if "logs" in wanted and tx.receipt:
                for log in tx.receipt.logs:
                    topics = tuple(log.topics) + (None,) * (4 - len(log.topics))
                    rows["logs"][(b.number, log.log_index)] = (
                        log.tx_index,
                        log.tx_hash,
                        log.address,
                        *topics,
                        log.data,
                    )
    return rows


def merged(*parts: dict[str, dict[Any, Any]]) -> dict[str, dict[Any, Any]]:
    result: dict[str, dict[Any, Any]] = {}
    for part in parts:
        for table, rows in part.items():
            result.setdefault(table, {}).update(rows)
    return result


@pytest_asyncio.fixture(loop_scope="session")
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = await create_pool(database_url, max_size=4)
    row = await upsert_chain(pool, ChainConfig(name="full", rpc_url="http://127.0.0.1:9"))
    try:
        yield Store(pool, row.id)
    finally:
        await pool.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_every_column_comes_back_as_written(store: Store) -> None:
    blocks = full_blocks(0, 20)
    await store.write(blocks)
    rows = await store.rows()
    assert rows == expected(blocks, store.chain_id)
    # What the builder is meant to cover, so the comparison above cannot pass vacuously.
    kinds = {r[TRANSACTION_COLUMNS.index("type") - 3] for r in rows["transactions"].values()}
    assert kinds == {0, 1, 2, 3}
    statuses = {r[TRANSACTION_COLUMNS.index("status") - 3] for r in rows["transactions"].values()}
    assert statuses == {0, 1}
    assert {len([t for t in r[3:7] if t]) for r in rows["logs"].values()} == {0, 1, 2, 3, 4}
    assert "" in {r[-1] for r in rows["logs"].values()}
    assert len(rows["withdrawals"]) == 2 * len([n for n in range(21) if n % 2 == 0 and n % 7])
    stored = await store.pool.fetchrow(
        "SELECT blob_versioned_hashes FROM transactions"
        " WHERE chain_id = $1 AND block_number = 1 AND tx_index = 3",
        store.chain_id,
    )
    assert stored["blob_versioned_hashes"] == [
        bytes.fromhex("01" + "00" * 30 + "03"),
        bytes.fromhex("01" + "ee" * 31),
    ]
    for dataset in DATASETS:
        covered = await dataset_coverage(store.pool, store.chain_id, dataset, 0, 20)
        assert (covered.indexed_blocks, covered.gaps) == (21, [])
    assert await dataset_blocks(store.pool, store.chain_id) == {d: 21 for d in DATASETS}
    assert await store.ranges() == [(0, 20)]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_rerun_writes_no_row_again(store: Store) -> None:
    blocks = full_blocks(0, 30)
    await store.write(blocks)
    before = await store.versions()
    await store.write(blocks)  # blocks exist: the re-write path, which finds nothing to do
    await store.write(blocks[5:12])
    assert await store.versions() == before
    assert await store.rows() == expected(blocks, store.chain_id)
    assert await store.ranges() == [(0, 30)]


@pytest.mark.asyncio(loop_scope="session")
async def test_blocks_fetched_without_receipts_are_refused_for_receipts_or_logs(
    store: Store,
) -> None:
    """Recorded as indexed, the receipts and logs of such blocks would be missing for good."""
    blocks = full_blocks(0, 30)
    await store.write(blocks)
    before = await store.rows()
    for block in blocks:
        for tx in block.transactions:
            tx.receipt = None
    for datasets in (["blocks", "logs"], DATASETS):
        with pytest.raises(ValueError, match="fetched without receipts"):
            await store.write(blocks, datasets)
    assert await store.rows() == before


@pytest.mark.asyncio(loop_scope="session")
async def test_a_dataset_missing_from_a_stored_range_is_filled_in(store: Store) -> None:
    blocks = full_blocks(0, 40)
    await store.write(blocks, ("blocks", "transactions"))
    assert await store.rows() == expected(blocks, store.chain_id, ("blocks", "transactions"))
    logs = await dataset_coverage(store.pool, store.chain_id, "logs", 0, 40)
    assert logs.gaps == [(0, 40)]
    assert await store.ranges() == []  # the chain wants all four datasets
    blocks_before = (await store.versions())["blocks"]

    await store.write(blocks[10:30])  # all datasets, for part of the range
    assert await store.rows() == merged(
        expected(blocks, store.chain_id, ("blocks", "transactions")),
        expected(blocks[10:30], store.chain_id),
    )
    assert (await store.versions())["blocks"] == blocks_before  # the blocks were not rewritten
    await store.write(blocks)
    assert await store.rows() == expected(blocks, store.chain_id)
    assert await store.ranges() == [(0, 40)]
    for dataset in DATASETS:
        covered = await dataset_coverage(store.pool, store.chain_id, dataset, 0, 40)
        assert covered.gaps == [], dataset


@pytest.mark.asyncio(loop_scope="session")
async def test_a_reorg_rewrite_leaves_no_row_of_the_replaced_blocks(store: Store) -> None:
    original = full_blocks(0, 49, txs_per_block=7)
    await store.write(original)
    fork = full_blocks(30, 49, txs_per_block=5, fork=1)
    await store.write(fork)
    assert await store.rows() == expected(original[:30] + fork, store.chain_id)
    assert await store.ranges() == [(0, 49)]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_reorg_rewrite_without_a_dataset_drops_that_dataset_for_the_replaced_blocks(
    store: Store,
) -> None:
    original = full_blocks(0, 49)
    await store.write(original)
    fork = full_blocks(30, 49, fork=1)
    await store.write(fork, ("blocks", "transactions"))  # no receipts, no logs
    assert await store.rows() == merged(
        expected(original[:30], store.chain_id),
        expected(fork, store.chain_id, ("blocks", "transactions")),
    )
    assert await store.ranges("dataset_ranges") == [
        (0, 49, "blocks"),
        (0, 29, "logs"),
        (0, 29, "receipts"),
        (0, 49, "transactions"),
    ]
    assert await store.ranges() == [(0, 29)]  # the chain indexes all four


@pytest.mark.asyncio(loop_scope="session")
async def test_delete_from_removes_every_row_and_range_of_the_blocks(store: Store) -> None:
    blocks = full_blocks(0, 59)
    await store.write(blocks)
    async with store.pool.acquire() as conn:
        assert await delete_from(conn, store.chain_id, 20, 39) == 20
    kept = [b for b in blocks if not 20 <= b.number <= 39]
    assert await store.rows() == expected(kept, store.chain_id)
    assert await store.ranges() == [(0, 19), (40, 59)]
    assert await store.ranges("dataset_ranges") == [
        (start, end, dataset) for dataset in sorted(DATASETS) for start, end in ((0, 19), (40, 59))
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_chain_that_gains_a_dataset_is_indexed_only_where_all_are_stored(
    store: Store,
) -> None:
    config = ChainConfig(
        name="grows", rpc_url="http://127.0.0.1:9", datasets=["blocks", "transactions"]
    )
    chain = await upsert_chain(store.pool, config)
    grows = Store(store.pool, chain.id)
    await grows.write(full_blocks(0, 99), ("blocks", "transactions"))
    await grows.write(full_blocks(200, 299, parent_fork=7))  # every dataset
    await grows.write(full_blocks(250, 349, parent_fork=7)[50:], ("blocks", "transactions", "logs"))
    assert await grows.ranges() == [(0, 99), (200, 349)]

    # Losing a dataset, or a config that does not name them, changes nothing stored.
    narrower = config.model_copy(update={"datasets": ["blocks"]})
    await upsert_chain(store.pool, narrower)
    unnamed = await upsert_chain(store.pool, ChainConfig(name="grows", rpc_url="http://x:1"))
    assert unnamed.config.datasets == ["blocks"]
    assert await grows.ranges() == [(0, 99), (200, 349)]

    with_logs = ChainConfig(
        name="grows", rpc_url="http://x:1", datasets=["blocks", "transactions", "logs"]
    )
    await upsert_chain(store.pool, with_logs)
    assert await grows.ranges() == [(200, 349)]
    await update_chain(
        store.pool, "grows", lambda c: c.model_copy(update={"datasets": list(DATASETS)})
    )
    assert await grows.ranges() == [(200, 299)]
    row = await get_chain(store.pool, "grows")
    assert row is not None and row.config.datasets == list(DATASETS)
    missing = await coverage(store.pool, chain.id, 0, 349)
    assert missing.gaps == [(0, 199), (300, 349)]  # what the scheduler re-schedules

    # A write planned before the chain gained logs records no indexed range.
    await grows.write(full_blocks(400, 409), ("blocks", "transactions"))
    assert await grows.ranges() == [(200, 299)]
    await grows.write(full_blocks(400, 409))
    assert await grows.ranges() == [(200, 299), (400, 409)]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_deleted_chain_is_purged_of_its_logs_and_withdrawals(store: Store) -> None:
    chain = await upsert_chain(store.pool, ChainConfig(name="doomed", rpc_url="http://x:1"))
    doomed = Store(store.pool, chain.id)
    await doomed.write(full_blocks(0, 29))
    await store.write(full_blocks(0, 29))  # another chain's rows stay
    assert await retire_chain(store.pool, "doomed") == chain.id
    while await purge_batch(store.pool, chain.id, batch_blocks=7):
        pass
    assert await doomed.rows() == {table: {} for table in ("blocks", *CHILD_TABLES)}
    assert await doomed.ranges("dataset_ranges") == []
    assert await store.rows() == expected(full_blocks(0, 29), store.chain_id)


async def _version_1_database(url: str) -> None:
    """A database as the indexer left it before migration 2: one chain, blocks 0..9 and 20..24
    with their transactions, both ranges indexed."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(CREATE_SCHEMA_MIGRATIONS)
        await conn.execute(MIGRATIONS[0])
        await conn.execute(RECORD_MIGRATION, 1)
        # The config as version 1 wrote it: no `datasets` key.
        config = ChainConfig(name="old", rpc_url="http://x:1").model_dump(exclude={"datasets"})
        chain_id = await conn.fetchval(
            "INSERT INTO chains (name, config) VALUES ('old', $1::jsonb) RETURNING id",
            json.dumps(config),
        )
        for b in full_blocks(0, 9, txs_per_block=2) + full_blocks(20, 24, txs_per_block=2):
            await conn.execute(
                "INSERT INTO blocks VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                *(chain_id, b.number, bytes.fromhex(b.hash), bytes.fromhex(b.parent_hash)),
                *(b.timestamp, bytes.fromhex(b.miner or ""), b.gas_used, b.gas_limit),
                *(b.base_fee_per_gas, len(b.transactions)),
            )
            for tx in b.transactions:
                await conn.execute(
                    "INSERT INTO transactions VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    *(chain_id, b.number, tx.tx_index, bytes.fromhex(tx.hash)),
                    *(bytes.fromhex(tx.from_address), None, tx.value, tx.gas, tx.gas_price),
                    tx.nonce,
                )
        await conn.executemany(
            "INSERT INTO indexed_ranges VALUES ($1, $2, $3)", [(chain_id, 0, 9), (chain_id, 20, 24)]
        )
    finally:
        await conn.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_migration_2_keeps_existing_chains_at_blocks_and_transactions(
    database_url: str,
) -> None:
    await _version_1_database(database_url)
    pool = await create_pool(database_url, max_size=2)  # migrates to the latest version
    try:
        assert await pool.fetchval("SELECT max(version) FROM schema_migrations") == len(MIGRATIONS)
        row = await get_chain(pool, "old")
        assert row is not None and row.config.datasets == ["blocks", "transactions"]
        old = Store(pool, row.id)
        assert await old.ranges() == [(0, 9), (20, 24)]
        assert await old.ranges("dataset_ranges") == [
            (0, 9, "blocks"),
            (20, 24, "blocks"),
            (0, 9, "transactions"),
            (20, 24, "transactions"),
        ]
        rows = await old.rows()
        assert sorted(rows["blocks"]) == [(n,) for n in [*range(10), *range(20, 25)]]
        assert len(rows["transactions"]) == 30 and rows["logs"] == {}

        # The indexer as upgraded re-writes an old range: new columns filled, logs not wanted.
        blocks = full_blocks(0, 9, txs_per_block=2)
        await old.write(blocks, row.config.datasets)
        rows = await old.rows()
        want = expected(blocks, row.id, ("blocks", "transactions"))
        assert {k: rows["blocks"][k] for k in want["blocks"]} == want["blocks"]
        assert {k: rows["transactions"][k] for k in want["transactions"]} == want["transactions"]
        assert rows["withdrawals"] == want["withdrawals"] and rows["logs"] == {}

        # Adding logs turns the old ranges into gaps: they are re-indexed with logs.
        await upsert_chain(pool, row.config.model_copy(update={"datasets": list(DATASETS)}))
        assert await old.ranges() == []
        await old.write(blocks)
        assert await old.ranges() == [(0, 9)]
        assert (await old.rows())["logs"] == expected(blocks, row.id)["logs"]
    finally:
        await pool.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_every_chains_status_from_two_queries_equals_each_chains_own(store: Store) -> None:
    """chain_statuses reads all chains at once; each status equals one read from that chain's
    own interval sets (coverage and dataset_coverage), whatever its start, head and datasets."""
    narrow = ["blocks", "transactions"]
    layouts = [  # name, start_block, datasets, writes (blocks, datasets written), head
        ("many-a", 0, list(DATASETS), [((0, 49), DATASETS), ((80, 99), DATASETS)], 109),
        ("many-b", 30, narrow, [((10, 59), narrow), ((60, 69), ("blocks",))], 69),
        ("many-c", 0, list(DATASETS), [((0, 19), ("blocks", "transactions"))], 40),
        ("many-d", 0, list(DATASETS), [], 10),  # a head, nothing stored
        ("many-e", 0, list(DATASETS), [((0, 9), DATASETS)], None),  # never scanned
    ]
    rows = []
    for name, start_block, datasets, writes, head in layouts:
        config = ChainConfig(
            name=name, rpc_url="http://127.0.0.1:9", start_block=start_block, datasets=datasets
        )
        chain = await upsert_chain(store.pool, config)
        for (first, last), written in writes:
            await Store(store.pool, chain.id).write(full_blocks(first, last), tuple(written))
        if head is not None:
            await set_head(store.pool, chain.id, head)
        row = await get_chain(store.pool, name)
        assert row is not None
        rows.append(row)

    statuses = await chain_statuses(store.pool, rows)

    assert [s.chain for s in statuses] == [name for name, *_ in layouts]
    for row, status in zip(rows, statuses, strict=True):
        assert status == await status_chain_by_chain(store.pool, row), row.config.name
    by_name = {s.chain: s for s in statuses}
    assert by_name["many-a"].missing_blocks == 40 and by_name["many-a"].gap_ranges == 2
    assert by_name["many-b"].indexed_blocks == 30  # from start_block 30; 60..69 lack transactions
    assert [d.behind_blocks for d in by_name["many-c"].datasets] == [0, 0, 20, 20]
    assert by_name["many-e"].head is None and by_name["many-e"].indexed_blocks == 0


async def status_chain_by_chain(pool: asyncpg.Pool, row: ChainRow) -> ChainStatus:
    """A chain's status read the plain way: a query per interval set."""
    config = row.config
    if row.head is None:
        nothing = tuple(DatasetStatus(d, 0, 0, 0, None, 0) for d in config.datasets)
        return ChainStatus(config.name, None, None, 0, 0, 0, None, False, nothing)
    covered = await coverage(pool, row.id, config.start_block, row.head)
    datasets = dataset_statuses(
        {
            dataset: await dataset_coverage(pool, row.id, dataset, config.start_block, row.head)
            for dataset in config.datasets
        }
    )
    return ChainStatus(
        chain=config.name,
        head=row.head,
        last_indexed=covered.last_indexed,
        indexed_blocks=covered.indexed_blocks,
        missing_blocks=covered.missing_blocks,
        gap_ranges=len(covered.gaps),
        largest_gap=covered.largest_gap,
        is_live_sync=covered.last_indexed is not None
        and row.head - covered.last_indexed <= config.live_sync_lag,
        datasets=datasets,
        finalized=row.finalized,
    )
