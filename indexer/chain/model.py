"""Blocks and transactions as the indexer stores them, parsed and checked from JSON-RPC.

Hashes and addresses stay lower-case hex (without 0x) once checked: the store writes them to
PostgreSQL as text, so turning them into bytes here would only be undone there. parse_block is
the reference: well-formed batches take the fast path in wire.py, which hands anything it
doubts back to parse_block, so the checks and their messages live here once.
"""

from __future__ import annotations

import binascii
import itertools
import re
from typing import Any, Literal

import msgspec

# A quantity is "0x" and hex digits (no sign, "_", space or leading "0X"), small enough for the
# column it is stored in (store/schema.py): bigint for numbers, timestamps, gas and nonces
# (int64, far above any real gas or nonce), integer for a transaction's or log's index,
# smallint for a transaction's type, numeric for values and fees, bounded by the EVM's uint256.
# Python's int(value, 16) accepts "-0x1", "0x1_0" and 4,000 digits alike; such a value would
# fail the whole COPY, or be stored. wire.py checks the same lengths and digits its own way
# (tests/unit/test_block_decoding.py holds both to the same answers).
Width = Literal["int16", "int32", "int64", "uint256"]
QUANTITY_PATTERNS: dict[Width, str] = {
    "int16": r"^0x[0-7]?[0-9a-fA-F]{1,3}\Z",  # a transaction's type (smallint)
    "int32": r"^0x[0-7]?[0-9a-fA-F]{1,7}\Z",
    "int64": r"^0x[0-7]?[0-9a-fA-F]{1,15}\Z",
    "uint256": r"^0x[0-9a-fA-F]{1,64}\Z",
}
_QUANTITIES = {width: re.compile(pattern) for width, pattern in QUANTITY_PATTERNS.items()}


class BadChainData(Exception):
    """The provider returned something that is not a valid block; the message says what."""


# Untracked by the cyclic garbage collector (gc=False): a decoded block holds strings, numbers and
# lists, never a cycle, and a batch is tens of thousands of these. Tracked (as slotted
# dataclasses), the collector walked every one of them again and again while the batch lived:
# on 6,000 mainnet-shaped blocks its time in a worker fell from 9.5 to 4.4 s (of ~70 CPU-s).
class Log(msgspec.Struct, gc=False):
    """One event log, from a receipt; topics and data are lower-case hex without 0x."""

    log_index: int  # position in the block, not in the transaction
    tx_index: int
    tx_hash: str
    address: str
    topics: list[str]  # 0 to 4
    data: str


class Receipt(msgspec.Struct, gc=False):
    """A transaction's receipt, checked against its block before it is attached."""

    tx_index: int
    tx_hash: str
    block_hash: str
    block_number: int
    status: int | None  # None before Byzantium (a state root instead)
    gas_used: int
    cumulative_gas_used: int
    effective_gas_price: int | None
    contract_address: str | None  # only for a contract creation
    logs: list[Log]


class Withdrawal(msgspec.Struct, gc=False):
    """A validator withdrawal (post-Shanghai blocks); amount in gwei."""

    index: int
    validator_index: int
    address: str
    amount: int


class Transaction(msgspec.Struct, gc=False):
    hash: str
    tx_index: int
    from_address: str
    to_address: str | None
    value: int
    gas: int | None
    gas_price: int | None
    nonce: int | None
    input: str = ""  # calldata, hex without 0x
    type: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    max_fee_per_blob_gas: int | None = None
    blob_versioned_hashes: list[str] | None = None
    # [{"address": hex, "storageKeys": [hex, ...]}], lower-case hex with 0x, stored as jsonb
    access_list: list[dict[str, Any]] | None = None
    receipt: Receipt | None = None  # attached by Fetcher.get_blocks(..., receipts=True)


class Block(msgspec.Struct, gc=False):
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    miner: str | None
    gas_used: int | None
    gas_limit: int | None
    base_fee_per_gas: int | None
    transactions: list[Transaction]
    # Every other header field of eth_getBlockByNumber; None where the chain lacks it.
    size: int | None = None
    extra_data: str | None = None
    state_root: str | None = None
    transactions_root: str | None = None
    receipts_root: str | None = None
    logs_bloom: str | None = None
    sha3_uncles: str | None = None
    mix_hash: str | None = None
    nonce: str | None = None
    difficulty: int | None = None
    total_difficulty: int | None = None
    blob_gas_used: int | None = None
    excess_blob_gas: int | None = None
    withdrawals_root: str | None = None
    parent_beacon_block_root: str | None = None
    requests_hash: str | None = None
    withdrawals: list[Withdrawal] | None = None  # None before Shanghai


def shown(value: Any) -> str:
    """A provider's value for a message: its repr, cut short (a field may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:72]}… ({len(text)} characters)"


def parse_quantity(value: Any, width: Width, what: str) -> int:
    """A JSON-RPC quantity that fits `width`, or BadChainData naming `what`."""
    if isinstance(value, str) and _QUANTITIES[width].search(value) is not None:
        return int(value, 16)
    raise BadChainData(f"{what} is not a hex quantity ({width}): {shown(value)}")


def quantity_field(
    raw: dict[str, Any], key: str, where: str, width: Width, required: bool = False
) -> int | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise BadChainData(f"{where}: missing field {key!r}")
        return None
    return parse_quantity(value, width, f"{where}: field {key!r}")


def data_field(raw: dict[str, Any], key: str, where: str, size: int | None = None) -> str | None:
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
        raise BadChainData(
            f"{where}: field {key!r} is not hex data{expected}: {shown(value)}"
        ) from None
    return value[2:].lower()


def required_data_field(raw: dict[str, Any], key: str, where: str, size: int | None) -> str:
    data = data_field(raw, key, where, size)
    if data is None:
        raise BadChainData(f"{where}: missing field {key!r}")
    return data


def _list(raw: dict[str, Any], key: str, where: str) -> list[Any] | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, list):
        raise BadChainData(f"{where}: field {key!r} is not a list: {shown(value)}")
    return value


def _hashes(raw: dict[str, Any], key: str, where: str) -> list[str] | None:
    """A list of 32-byte hashes (blobVersionedHashes), or None when the field is absent."""
    values = _list(raw, key, where)
    if values is None:
        return None
    return [
        required_data_field({key: v}, key, f"{where} {key}[{i}]", 32) for i, v in enumerate(values)
    ]


def _access_list(raw: dict[str, Any], where: str) -> list[dict[str, Any]] | None:
    """EIP-2930's [{"address", "storageKeys"}], checked, lower-cased, keeping the 0x (jsonb)."""
    entries = _list(raw, "accessList", where)
    if entries is None:
        return None
    checked = []
    for i, entry in enumerate(entries):
        at = f"{where} accessList[{i}]"
        if not isinstance(entry, dict):
            raise BadChainData(f"{at}: expected an object, got {shown(entry)}")
        keys = _hashes(entry, "storageKeys", at)
        if keys is None:
            raise BadChainData(f"{at}: missing field 'storageKeys'")
        address = required_data_field(entry, "address", at, 20)
        checked.append({"address": "0x" + address, "storageKeys": ["0x" + k for k in keys]})
    return checked


def parse_transaction(raw: Any, block_number: int, position: int) -> Transaction:
    """One full transaction object; its index must match its position in the block."""
    where = f"block {block_number} transaction {position}"
    if not isinstance(raw, dict):
        raise BadChainData(f"{where}: expected a transaction object, got {type(raw).__name__}")
    index = quantity_field(raw, "transactionIndex", where, "int32", required=True)
    if index != position:
        raise BadChainData(f"{where}: transactionIndex is {index}")
    value = quantity_field(raw, "value", where, "uint256", required=True)
    assert value is not None
    return Transaction(
        hash=required_data_field(raw, "hash", where, 32),
        tx_index=position,
        from_address=required_data_field(raw, "from", where, 20),
        to_address=data_field(raw, "to", where, 20),
        value=value,
        gas=quantity_field(raw, "gas", where, "int64"),
        gas_price=quantity_field(raw, "gasPrice", where, "uint256"),
        nonce=quantity_field(raw, "nonce", where, "int64"),
        input=data_field(raw, "input", where) or "",
        type=quantity_field(raw, "type", where, "int16"),
        max_fee_per_gas=quantity_field(raw, "maxFeePerGas", where, "uint256"),
        max_priority_fee_per_gas=quantity_field(raw, "maxPriorityFeePerGas", where, "uint256"),
        max_fee_per_blob_gas=quantity_field(raw, "maxFeePerBlobGas", where, "uint256"),
        blob_versioned_hashes=_hashes(raw, "blobVersionedHashes", where),
        access_list=_access_list(raw, where),
    )


def parse_withdrawal(raw: Any, where: str) -> Withdrawal:
    """One withdrawal of a block; its quantities are uint64 on chain, far within a bigint."""
    if not isinstance(raw, dict):
        raise BadChainData(f"{where}: expected a withdrawal object, got {shown(raw)}")
    index, validator, amount = (
        quantity_field(raw, key, where, "int64", required=True)
        for key in ("index", "validatorIndex", "amount")
    )
    assert index is not None and validator is not None and amount is not None
    return Withdrawal(index, validator, required_data_field(raw, "address", where, 20), amount)


def check_withdrawal_indexes(withdrawals: list[Withdrawal], where: str) -> None:
    """A block's withdrawals have distinct indexes (the withdrawals table's key, and unique on
    every chain): a repeat is refused as bad chain data, not left to fail the store's COPY."""
    first_at: dict[int, int] = {}
    for position, withdrawal in enumerate(withdrawals):
        first = first_at.setdefault(withdrawal.index, position)
        if first != position:
            raise BadChainData(
                f"{where} withdrawal {position}: index {withdrawal.index} repeats withdrawal"
                f" {first}'s (a block's withdrawal indexes are unique)"
            )


def _block_object(raw: Any, expected_number: int) -> dict[str, Any]:
    """A block (or header) object that says it is block `expected_number`."""
    where = f"block {expected_number}"
    if raw is None:
        raise BadChainData(f"{where}: the provider returned null (block not available)")
    if not isinstance(raw, dict):
        raise BadChainData(f"{where}: expected a block object, got {type(raw).__name__}")
    number = quantity_field(raw, "number", where, "int64", required=True)
    if number != expected_number:
        raise BadChainData(f"{where}: the provider returned block {number}")
    return raw


def parse_header_hash(raw: Any, expected_number: int) -> str:
    """The hash of a header-only block for `expected_number`, checked like a full block's."""
    return required_data_field(
        _block_object(raw, expected_number), "hash", f"block {expected_number}", 32
    )


def parse_block(raw: Any, expected_number: int) -> Block:
    """A full block (with transaction objects) for `expected_number`, or BadChainData."""
    where = f"block {expected_number}"
    raw = _block_object(raw, expected_number)
    transactions = raw.get("transactions")
    if not isinstance(transactions, list):
        raise BadChainData(f"{where}: 'transactions' is not a list")
    timestamp = quantity_field(raw, "timestamp", where, "int64", required=True)
    assert timestamp is not None
    withdrawals = _list(raw, "withdrawals", where)
    block = Block(
        number=expected_number,
        hash=required_data_field(raw, "hash", where, 32),
        parent_hash=required_data_field(raw, "parentHash", where, 32),
        timestamp=timestamp,
        miner=data_field(raw, "miner", where, 20),
        gas_used=quantity_field(raw, "gasUsed", where, "int64"),
        gas_limit=quantity_field(raw, "gasLimit", where, "int64"),
        base_fee_per_gas=quantity_field(raw, "baseFeePerGas", where, "uint256"),
        transactions=[
            parse_transaction(tx, expected_number, position)
            for position, tx in enumerate(transactions)
        ],
        size=quantity_field(raw, "size", where, "int64"),
        extra_data=data_field(raw, "extraData", where),
        state_root=data_field(raw, "stateRoot", where, 32),
        transactions_root=data_field(raw, "transactionsRoot", where, 32),
        receipts_root=data_field(raw, "receiptsRoot", where, 32),
        logs_bloom=data_field(raw, "logsBloom", where, 256),
        sha3_uncles=data_field(raw, "sha3Uncles", where, 32),
        mix_hash=data_field(raw, "mixHash", where, 32),
        nonce=data_field(raw, "nonce", where, 8),
        difficulty=quantity_field(raw, "difficulty", where, "uint256"),
        total_difficulty=quantity_field(raw, "totalDifficulty", where, "uint256"),
        blob_gas_used=quantity_field(raw, "blobGasUsed", where, "int64"),
        excess_blob_gas=quantity_field(raw, "excessBlobGas", where, "int64"),
        withdrawals_root=data_field(raw, "withdrawalsRoot", where, 32),
        parent_beacon_block_root=data_field(raw, "parentBeaconBlockRoot", where, 32),
        requests_hash=data_field(raw, "requestsHash", where, 32),
        withdrawals=None
        if withdrawals is None
        else [parse_withdrawal(w, f"{where} withdrawal {i}") for i, w in enumerate(withdrawals)],
    )
    if block.withdrawals is not None:
        check_withdrawal_indexes(block.withdrawals, where)
    return block


def check_links(blocks: list[Block]) -> None:
    """Consecutive blocks must chain through parentHash; a break means a reorg or bad data."""
    for previous, block in itertools.pairwise(blocks):
        if block.parent_hash != previous.hash:
            raise BadChainData(
                f"block {block.number}: parentHash 0x{block.parent_hash} does not match "
                f"block {previous.number} hash 0x{previous.hash} (reorg during fetch?)"
            )
