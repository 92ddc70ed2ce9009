"""A chain's rows written straight into PostgreSQL (no node), and counted, for API and store
tests; blocks with every field, receipts, logs and withdrawals for the store's own tests."""

from __future__ import annotations

from typing import Any

import asyncpg

from indexer.chain.model import Block, Log, Receipt, Transaction, Withdrawal
from indexer.datasets import DATASETS
from indexer.store.blocks import store_batch

COUNT_ROWS = """
SELECT (SELECT count(*) FROM blocks WHERE chain_id = $1),
       (SELECT count(*) FROM transactions WHERE chain_id = $1),
       (SELECT count(*) FROM indexed_ranges WHERE chain_id = $1)
"""


async def store_blocks(pool: asyncpg.Pool, chain_id: int, first: int, last: int) -> None:
    """Blocks first..last with one receipted transaction each, stored as a worker does."""
    blocks = []
    parent = f"{first:064x}"  # hashes and addresses are lower-case hex without 0x
    for number in range(first, last + 1):
        digest = f"{number + 1:064x}"
        tx = Transaction(f"{number:062x}09", 0, "01" * 20, None, 1, None, None, None)
        tx.receipt = Receipt(0, tx.hash, digest, number, 1, 21_000, 21_000, None, None, [])
        txs = [tx]
        blocks.append(Block(number, digest, parent, 0, None, None, None, None, txs))
        parent = digest
    async with pool.acquire() as conn:
        await store_batch(conn, chain_id, blocks, DATASETS)


async def row_counts(pool: asyncpg.Pool, chain_id: int) -> tuple[int, int, int]:
    """The chain's (blocks, transactions, indexed ranges)."""
    blocks, transactions, ranges = await pool.fetchrow(COUNT_ROWS, chain_id)
    return blocks, transactions, ranges


# --- full blocks: every header field, receipts, logs, withdrawals ----------------------------


def block_hash(number: int, fork: int = 0) -> str:
    """Hash of block `number` on fork `fork` (0 the original): distinct per fork."""
    return f"{fork:04x}{number:060x}"


def full_transaction(number: int, position: int, fork: int, first_log: int) -> Transaction:
    """A transaction of every kind in turn, with a receipt and 0..4 logs of 0..4 topics.

    Position 0 of each block is legacy, 1 a reverted EIP-2930 contract creation, 2 EIP-1559,
    3 an EIP-4844 blob transaction, then round again; data and topics vary with the position.
    """
    kind = position % 4
    tx_hash = f"{fork:02x}{number:040x}{position:022x}"
    creation = kind == 1
    access_list: list[dict[str, Any]] | None = None
    if kind == 1:
        access_list = [
            {"address": "0x" + "ab" * 20, "storageKeys": ["0x" + "00" * 31 + "01"]},
            # not a real key: checks the jsonb's COPY escaping
            {"address": "0x" + "cd" * 20, "storageKeys": ['\\ "quoted"\n\ttab']},
        ]
    elif kind == 2:
        access_list = []
    logs = [
        Log(
            log_index=first_log + i,
            tx_index=position,
            tx_hash=tx_hash,
            address=f"{position % 3:040x}",
            topics=[f"{fork:02x}{i:02x}{j:060x}" for j in range((position + i) % 5)],
            data="" if i % 2 else "ff" * (position * 7 % 257),
        )
        for i in range(position % 5)
    ]
    receipt = Receipt(
        tx_index=position,
        tx_hash=tx_hash,
        block_hash=block_hash(number, fork),
        block_number=number,
        status=0 if creation else 1,
        gas_used=21_000 + position,
        cumulative_gas_used=21_000 * (position + 1),
        effective_gas_price=None if kind == 0 and position % 8 == 0 else 7 + position,
        contract_address=f"{number:020x}{position:020x}" if creation else None,
        logs=logs,
    )
    return Transaction(
        hash=tx_hash,
        tx_index=position,
        from_address=f"{position + 1:040x}",
        to_address=None if creation else "02" * 20,
        value=2**256 - 1 if position == 2 else position,
        gas=100_000,
        gas_price=None if kind >= 2 else 10**9 + position,
        nonce=position,
        input="" if kind == 0 else "a9059cbb" + "00" * (position * 11 % 300),
        type=kind,
        max_fee_per_gas=2 * 10**9 if kind >= 2 else None,
        max_priority_fee_per_gas=10**8 if kind >= 2 else None,
        max_fee_per_blob_gas=3 if kind == 3 else None,
        blob_versioned_hashes=["01" + f"{position:062x}", "01" + "ee" * 31] if kind == 3 else None,
        access_list=access_list,
        receipt=receipt,
    )


def full_blocks(
    first: int, last: int, txs_per_block: int = 6, fork: int = 0, parent_fork: int = 0
) -> list[Block]:
    """Blocks first..last of fork `fork`, with every field set; the first links to block
    first-1 of `parent_fork`. Even blocks carry two withdrawals, odd ones none (an empty
    list), every seventh predates Shanghai (None) and lacks the newer header fields."""
    blocks = []
    for number in range(first, last + 1):
        transactions = []
        first_log = 0
        for position in range(txs_per_block):
            tx = full_transaction(number, position, fork, first_log)
            assert tx.receipt is not None
            first_log += len(tx.receipt.logs)
            transactions.append(tx)
        old = number % 7 == 0
        withdrawals = (
            None
            if old
            else [
                Withdrawal(index=number * 2 + i, validator_index=9 + i, address="0c" * 20, amount=i)
                for i in range(2 if number % 2 == 0 else 0)
            ]
        )
        parent = (
            block_hash(number - 1, fork if number > first else parent_fork) if number else "00" * 32
        )
        blocks.append(
            Block(
                number=number,
                hash=block_hash(number, fork),
                parent_hash=parent,
                timestamp=1_700_000_000 + number,
                miner="0e" * 20,
                gas_used=21_000 * txs_per_block,
                gas_limit=30_000_000,
                base_fee_per_gas=None if old else 10**9,
                transactions=transactions,
                size=1_000 + number,
                extra_data="" if number % 2 else "d883010d",
                state_root="51" * 32,
                transactions_root="52" * 32,
                receipts_root="53" * 32,
                logs_bloom="00" * 255 + f"{fork:02x}",
                sha3_uncles="1d" * 32,
                mix_hash="4d" * 32,
                nonce="0000000000000000",
                difficulty=0 if not old else 2**64,
                total_difficulty=None if not old else 2**70 + number,
                blob_gas_used=None if old else 131_072,
                excess_blob_gas=None if old else 0,
                withdrawals_root=None if old else "77" * 32,
                parent_beacon_block_root=None if old else "88" * 32,
                requests_hash=None if old else "99" * 32,
                withdrawals=withdrawals,
            )
        )
    return blocks


def bare_block(number: int, parent: int | None = None) -> Block:
    """A block with no transactions and only its links set, child of `parent` (default
    number - 1): for tests of streaming and order, where the rows do not matter."""
    return Block(
        number=number,
        hash=f"{number:064x}",
        parent_hash=f"{number - 1 if parent is None else parent:064x}",
        timestamp=0,
        miner=None,
        gas_used=None,
        gas_limit=None,
        base_fee_per_gas=None,
        transactions=[],
    )
