"""Blocks, transactions, logs and withdrawals as COPY text rows, the columns they fill.

COPY text is cheaper to build than asyncpg's binary numeric encoding, which matters at 150
transactions and 300 logs a block. Hex stays hex: a bytea is `\\x` and its digits, with the
backslash doubled for COPY's own escaping.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from indexer.chain.model import Block, Transaction

BLOCK_COLUMNS = [
    "chain_id",
    "number",
    "hash",
    "parent_hash",
    "timestamp",
    "miner",
    "gas_used",
    "gas_limit",
    "base_fee_per_gas",
    "tx_count",
    "size",
    "extra_data",
    "state_root",
    "transactions_root",
    "receipts_root",
    "logs_bloom",
    "sha3_uncles",
    "mix_hash",
    "nonce",
    "difficulty",
    "total_difficulty",
    "blob_gas_used",
    "excess_blob_gas",
    "withdrawals_root",
    "parent_beacon_block_root",
    "requests_hash",
]
TRANSACTION_COLUMNS = [
    "chain_id",
    "block_number",
    "tx_index",
    "hash",
    "from_address",
    "to_address",
    "value",
    "gas",
    "gas_price",
    "nonce",
    "input",
    "type",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "max_fee_per_blob_gas",
    "blob_versioned_hashes",
    "access_list",
    # the receipt, merged into the row
    "status",
    "gas_used",
    "cumulative_gas_used",
    "effective_gas_price",
    "contract_address",
]
LOG_COLUMNS = [
    "chain_id",
    "block_number",
    "log_index",
    "tx_index",
    "tx_hash",
    "address",
    "topic0",
    "topic1",
    "topic2",
    "topic3",
    "data",
]
WITHDRAWAL_COLUMNS = ["chain_id", "block_number", "index", "validator_index", "address", "amount"]

NULL = "\\N"
HEX = "\\\\x"  # a bytea's hex prefix, its backslash escaped for COPY
NO_RECEIPT = "\t".join([NULL] * 5)


def _bytea(hex_data: str | None) -> str:
    """A bytea in COPY text format: the escaped backslash, then x and the hex digits."""
    return NULL if hex_data is None else "\\\\x" + hex_data


def _number(value: int | None) -> str:
    return NULL if value is None else str(value)


def _bytea_array(hashes: list[str] | None) -> str:
    """A bytea[] literal in COPY text: each element's backslash escaped once for the array
    parser and each of those once more for COPY, so `\\x01` is written `{\\\\\\\\x01}`."""
    if hashes is None:
        return NULL
    return "{" + ",".join("\\\\\\\\x" + h for h in hashes) + "}"


def _json(value: Any) -> str:
    """jsonb in COPY text: JSON escapes every control character, so only its own backslashes
    need doubling for COPY. (msgspec: json.dumps was 1.6 % of a worker's CPU on a 3-tx backlog.)"""
    if value is None:
        return NULL
    if value == []:
        return "[]"  # most EIP-1559 transactions
    return msgspec.json.encode(value).decode().replace("\\", "\\\\")


_TOPIC_SEPARATOR = "\t" + HEX
# By how many topics a log has: what follows them (all four NULL for a log without topics).
_MISSING_TOPICS = ["\t".join([NULL] * 4)] + [("\t" + NULL) * (4 - n) for n in range(1, 5)]


def _topics(topics: list[str]) -> str:
    """topic0..topic3: the log's topics, NULL for those it lacks. (One join, no list per log.)"""
    if not topics:
        return _MISSING_TOPICS[0]
    return HEX + _TOPIC_SEPARATOR.join(topics) + _MISSING_TOPICS[len(topics)]


def block_lines(chain_id: int, blocks: Iterable[Block]) -> bytes:
    """The blocks' header rows."""
    return "".join(
        f"{chain_id}\t{b.number}\t\\\\x{b.hash}\t\\\\x{b.parent_hash}\t{b.timestamp}\t"
        f"{_bytea(b.miner)}\t{_number(b.gas_used)}\t{_number(b.gas_limit)}\t"
        f"{_number(b.base_fee_per_gas)}\t{len(b.transactions)}\t"
        f"{_number(b.size)}\t{_bytea(b.extra_data)}\t{_bytea(b.state_root)}\t"
        f"{_bytea(b.transactions_root)}\t{_bytea(b.receipts_root)}\t{_bytea(b.logs_bloom)}\t"
        f"{_bytea(b.sha3_uncles)}\t{_bytea(b.mix_hash)}\t{_bytea(b.nonce)}\t"
        f"{_number(b.difficulty)}\t{_number(b.total_difficulty)}\t"
        f"{_number(b.blob_gas_used)}\t{_number(b.excess_blob_gas)}\t"
        f"{_bytea(b.withdrawals_root)}\t{_bytea(b.parent_beacon_block_root)}\t"
        f"{_bytea(b.requests_hash)}\n"
        for b in blocks
    ).encode()


def _transaction_line(chain_id: int, number: int, tx: Transaction, receipts: bool) -> str:
    # Conditional expressions, not _number/_bytea calls: a call per column was a third of the
    # cost of a 150-transaction block's rows.
    r = tx.receipt if receipts else None
    return (
        f"{chain_id}\t{number}\t{tx.tx_index}\t\\\\x{tx.hash}\t\\\\x{tx.from_address}\t"
        f"{NULL if tx.to_address is None else HEX + tx.to_address}\t{tx.value}\t"
        f"{NULL if tx.gas is None else tx.gas}\t{NULL if tx.gas_price is None else tx.gas_price}\t"
        f"{NULL if tx.nonce is None else tx.nonce}\t\\\\x{tx.input}\t"
        f"{NULL if tx.type is None else tx.type}\t"
        f"{NULL if tx.max_fee_per_gas is None else tx.max_fee_per_gas}\t"
        f"{NULL if tx.max_priority_fee_per_gas is None else tx.max_priority_fee_per_gas}\t"
        f"{NULL if tx.max_fee_per_blob_gas is None else tx.max_fee_per_blob_gas}\t"
        f"{NULL if tx.blob_versioned_hashes is None else _bytea_array(tx.blob_versioned_hashes)}\t"
        f"{NULL if tx.access_list is None else _json(tx.access_list)}\t"
        + (
            NO_RECEIPT
            if r is None
            else f"{NULL if r.status is None else r.status}\t{r.gas_used}\t"
            f"{r.cumulative_gas_used}\t"
            f"{NULL if r.effective_gas_price is None else r.effective_gas_price}\t"
            f"{NULL if r.contract_address is None else HEX + r.contract_address}"
        )
        + "\n"
    )


def transaction_lines(chain_id: int, blocks: Iterable[Block], receipts: bool) -> bytes:
    """The blocks' transaction rows; the receipt columns NULL unless `receipts` and it is set."""
    return "".join(
        _transaction_line(chain_id, b.number, tx, receipts) for b in blocks for tx in b.transactions
    ).encode()


def log_lines(chain_id: int, blocks: Iterable[Block]) -> bytes:
    """The event logs of the blocks' receipts (none for a transaction without a receipt)."""
    return "".join(
        f"{chain_id}\t{b.number}\t{log.log_index}\t{log.tx_index}\t\\\\x{log.tx_hash}\t"
        f"\\\\x{log.address}\t{_topics(log.topics)}\t\\\\x{log.data}\n"
        for b in blocks
        for tx in b.transactions
        if tx.receipt is not None
        for log in tx.receipt.logs
    ).encode()


def withdrawal_lines(chain_id: int, blocks: Iterable[Block]) -> bytes:
    return "".join(
        f"{chain_id}\t{b.number}\t{w.index}\t{w.validator_index}\t\\\\x{w.address}\t{w.amount}\n"
        for b in blocks
        if b.withdrawals
        for w in b.withdrawals
    ).encode()
