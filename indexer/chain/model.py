"""Blocks and transactions as the indexer stores them, parsed and checked from JSON-RPC.

Hashes and addresses stay lower-case hex (without 0x) once checked: the store writes them to
PostgreSQL as text, so turning them into bytes here would only be undone there. parse_block is
the reference: well-formed batches take the fast path in wire.py, which hands anything it
doubts back to parse_block, so the checks and their messages live here once.
"""

from __future__ import annotations

import binascii
import itertools
from dataclasses import dataclass
from typing import Any


class BadChainData(Exception):
    """The provider returned something that is not a valid block; the message says what."""


@dataclass(slots=True)
class Transaction:
    hash: str
    tx_index: int
    from_address: str
    to_address: str | None
    value: int
    gas: int | None
    gas_price: int | None
    nonce: int | None


@dataclass(slots=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    miner: str | None
    gas_used: int | None
    gas_limit: int | None
    base_fee_per_gas: int | None
    transactions: list[Transaction]


def _quantity(raw: dict[str, Any], key: str, where: str, required: bool = False) -> int | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise BadChainData(f"{where}: missing field {key!r}")
        return None
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        raise BadChainData(f"{where}: field {key!r} is not a hex quantity: {value!r}") from None


def _data(raw: dict[str, Any], key: str, where: str, size: int | None = None) -> str | None:
    """Hex data of `size` bytes, checked and returned as lower-case hex without 0x."""
    value = raw.get(key)
    if value is None:
        return None
    try:
        if value[:2] != "0x" or (size is not None and len(value) != 2 + 2 * size):
            raise ValueError
        binascii.unhexlify(value[2:])  # strict: hex digits only, no signs, spaces or "_"
    except (TypeError, ValueError, binascii.Error):
        expected = f" of {size} bytes" if size is not None else ""
        raise BadChainData(f"{where}: field {key!r} is not hex data{expected}: {value!r}") from None
    return value[2:].lower()


def _required_data(raw: dict[str, Any], key: str, where: str, size: int) -> str:
    data = _data(raw, key, where, size)
    if data is None:
        raise BadChainData(f"{where}: missing field {key!r}")
    return data


def parse_transaction(raw: Any, block_number: int, position: int) -> Transaction:
    """One full transaction object; its index must match its position in the block."""
    where = f"block {block_number} transaction {position}"
    if not isinstance(raw, dict):
        raise BadChainData(f"{where}: expected a transaction object, got {type(raw).__name__}")
    index = _quantity(raw, "transactionIndex", where, required=True)
    if index != position:
        raise BadChainData(f"{where}: transactionIndex is {index}")
    value = _quantity(raw, "value", where, required=True)
    assert value is not None
    return Transaction(
        hash=_required_data(raw, "hash", where, 32),
        tx_index=position,
        from_address=_required_data(raw, "from", where, 20),
        to_address=_data(raw, "to", where, 20),
        value=value,
        gas=_quantity(raw, "gas", where),
        gas_price=_quantity(raw, "gasPrice", where),
        nonce=_quantity(raw, "nonce", where),
    )


def parse_block(raw: Any, expected_number: int) -> Block:
    """A full block (with transaction objects) for `expected_number`, or BadChainData."""
    where = f"block {expected_number}"
    if raw is None:
        raise BadChainData(f"{where}: the provider returned null (block not available)")
    if not isinstance(raw, dict):
        raise BadChainData(f"{where}: expected a block object, got {type(raw).__name__}")
    number = _quantity(raw, "number", where, required=True)
    if number != expected_number:
        raise BadChainData(f"{where}: the provider returned block {number}")
    transactions = raw.get("transactions")
    if not isinstance(transactions, list):
        raise BadChainData(f"{where}: 'transactions' is not a list")
    timestamp = _quantity(raw, "timestamp", where, required=True)
    assert timestamp is not None
    return Block(
        number=expected_number,
        hash=_required_data(raw, "hash", where, 32),
        parent_hash=_required_data(raw, "parentHash", where, 32),
        timestamp=timestamp,
        miner=_data(raw, "miner", where, 20),
        gas_used=_quantity(raw, "gasUsed", where),
        gas_limit=_quantity(raw, "gasLimit", where),
        base_fee_per_gas=_quantity(raw, "baseFeePerGas", where),
        transactions=[
            parse_transaction(tx, expected_number, position)
            for position, tx in enumerate(transactions)
        ],
    )


def check_links(blocks: list[Block]) -> None:
    """Consecutive blocks must chain through parentHash; a break means a reorg or bad data."""
    for previous, block in itertools.pairwise(blocks):
        if block.parent_hash != previous.hash:
            raise BadChainData(
                f"block {block.number}: parentHash 0x{block.parent_hash} does not match "
                f"block {previous.number} hash 0x{previous.hash} (reorg during fetch?)"
            )
