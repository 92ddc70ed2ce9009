"""The fast path from a JSON-RPC batch of full blocks to checked Blocks.

Decoding every field of every block into Python objects, then checking them one by one, was
half the worker's CPU (py-spy: json 22 %, parse_block 23 %). Here msgspec decodes a batch
straight into typed structs, checking sizes in C and skipping the fields the indexer does not
store (signatures, chainId, uncles, ...) without building them; every hex digit of a block is
then checked by one unhexlify.

This path only ever accepts: anything unusual (an error answer, a null block, a wrong type, a
bad hash) returns None or falls back to `model.parse_block`, whose checks and messages are the
reference. So a block is accepted here exactly when parse_block would accept it.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from indexer.chain.model import Block, Transaction, Withdrawal, parse_block

# Structs with gc=False: they hold strings and lists decoded from JSON, never a cycle, and the
# collector need not track (and walk) hundreds of thousands of them per batch.
Hash = Annotated[str, msgspec.Meta(min_length=66, max_length=66)]  # 0x + 32 bytes
Address = Annotated[str, msgspec.Meta(min_length=42, max_length=42)]  # 0x + 20 bytes
Bloom = Annotated[str, msgspec.Meta(min_length=514, max_length=514)]  # 0x + 256 bytes
Nonce = Annotated[str, msgspec.Meta(min_length=18, max_length=18)]  # 0x + 8 bytes
Data = Annotated[str, msgspec.Meta(min_length=2)]  # 0x + any whole bytes (checked below)
# Quantities: "0x" and 1 to N hex digits, N from the pattern of their width in model.py. Only
# the lengths are checked while decoding: a msgspec pattern costs a regex search per value
# (~350 ns, more than the whole rest of decoding a quantity), so the digits are checked with
# the data, by `check_hex`, and the top digit of a full-width bigint or smallint by `too_wide`.
Int16 = Annotated[str, msgspec.Meta(min_length=3, max_length=6)]
Int32 = Annotated[str, msgspec.Meta(min_length=3, max_length=10)]
Int64 = Annotated[str, msgspec.Meta(min_length=3, max_length=18)]
Uint256 = Annotated[str, msgspec.Meta(min_length=3, max_length=66)]


class WireAccess(msgspec.Struct, gc=False):
    address: Address
    storageKeys: list[Hash]


class WireTransaction(msgspec.Struct, gc=False):
    hash: Hash
    sender: Address = msgspec.field(name="from")
    transactionIndex: Int32
    value: Uint256
    to: Address | None = None
    gas: Int64 | None = None
    gasPrice: Uint256 | None = None
    nonce: Int64 | None = None
    input: Data | None = None
    type: Int16 | None = None
    maxFeePerGas: Uint256 | None = None
    maxPriorityFeePerGas: Uint256 | None = None
    maxFeePerBlobGas: Uint256 | None = None
    blobVersionedHashes: list[Hash] | None = None
    accessList: list[WireAccess] | None = None


class WireWithdrawal(msgspec.Struct, gc=False):
    index: Int64
    validatorIndex: Int64
    address: Address
    amount: Int64


class WireBlock(msgspec.Struct, gc=False):
    number: Int64
    hash: Hash
    parentHash: Hash
    timestamp: Int64
    transactions: list[WireTransaction]
    miner: Address | None = None
    gasUsed: Int64 | None = None
    gasLimit: Int64 | None = None
    baseFeePerGas: Uint256 | None = None
    size: Int64 | None = None
    extraData: Data | None = None
    stateRoot: Hash | None = None
    transactionsRoot: Hash | None = None
    receiptsRoot: Hash | None = None
    logsBloom: Bloom | None = None
    sha3Uncles: Hash | None = None
    mixHash: Hash | None = None
    nonce: Nonce | None = None
    difficulty: Uint256 | None = None
    totalDifficulty: Uint256 | None = None
    blobGasUsed: Int64 | None = None
    excessBlobGas: Int64 | None = None
    withdrawalsRoot: Hash | None = None
    parentBeaconBlockRoot: Hash | None = None
    requestsHash: Hash | None = None
    withdrawals: list[WireWithdrawal] | None = None


class WireAnswer(msgspec.Struct, gc=False):
    id: int | str | None = None  # anything else (a list, an object) goes the careful way
    result: WireBlock | None = None
    error: Any = None


_DECODER = msgspec.json.Decoder(list[WireAnswer])


def decode_block_batch(body: bytes, ids: list[int]) -> list[WireBlock] | None:
    """The blocks of a batch answer in request order, or None if anything is unusual."""
    try:
        return results_by_id(_DECODER.decode(body), ids)
    except msgspec.MsgspecError:
        return None


def results_by_id(answers: list[Any], ids: list[int]) -> list[Any] | None:
    """Each call's result in request order; None if any is missing, an error or null."""
    if len(answers) != len(ids):
        return None
    by_id = {answer.id: answer for answer in answers}
    results = []
    for call_id in ids:
        answer = by_id.get(call_id)
        if answer is None or answer.error is not None or answer.result is None:
            return None
        results.append(answer.result)
    return results


def _quantity(value: str | None) -> int | None:
    return None if value is None else int(value, 16)


def _hex(value: str | None) -> str | None:
    return None if value is None else value[2:]


def check_hex(values: list[str | None]) -> bool:
    """Whether every value but None is "0x" and lower-case hex digits (no upper-case: see _block).

    Whole bytes are left to the caller (msgspec checks the sizes of hashes and addresses;
    `odd` checks data of free length). As strict as model._data's unhexlify, in four C passes
    over the block's hex: a Python step per value (a slice, a startswith) would cost more
    than decoding it. The values joined by newlines must, once the hex digits are deleted,
    leave exactly one "x" per value and the newlines between them, each newline followed by
    "0x": then every value is "0x" and hex digits, whatever it holds.
    """
    present = list(filter(None, values))  # drops None ("" cannot be here: min_length)
    joined = "\n".join(present).encode()  # non-ASCII becomes bytes that are not hex digits
    skeleton = b"x" + b"\nx" * (len(present) - 1) if present else b""
    return (
        joined.translate(None, b"0123456789abcdef") == skeleton
        and joined.startswith(b"0x")
        and joined.count(b"\n0x") == len(present) - 1
    ) or not present


def odd(values: list[str]) -> bool:
    """Whether any data value of free length is not whole bytes (an odd number of digits)."""
    return any(map((1).__and__, map(len, values)))


def too_wide(values: list[str | None], full_length: int) -> bool:
    """Whether a quantity of all `full_length` characters (0x and 16 digits for a bigint) has
    its top bit set: the pattern of its width ([0-7]?[0-9a-f]{1,15}) refuses it."""
    present = list(filter(None, values))
    if not present or max(map(len, present)) < full_length:
        return False  # the common case, all in C
    return any(len(value) == full_length and value[2] > "7" for value in present)


def _transaction(
    tx: WireTransaction, hexes: list[str | None], int64s: list[str | None], data: list[str]
) -> Transaction:
    """A Transaction; its values go to the lists the caller checks once for the whole block."""
    to, calldata, gas, price, nonce, kind = tx.to, tx.input, tx.gas, tx.gasPrice, tx.nonce, tx.type
    fee, tip, blob_fee = tx.maxFeePerGas, tx.maxPriorityFeePerGas, tx.maxFeePerBlobGas
    hexes += (tx.hash, tx.sender, tx.transactionIndex, tx.value, to, gas, price, nonce, kind)
    hexes += (fee, tip, blob_fee, calldata)
    int64s += (gas, nonce)
    if calldata is None:
        calldata = "0x"
    else:
        data.append(calldata)
    if kind is not None and len(kind) == 6 and kind[2] > "7":
        raise ValueError  # above a smallint
    blob_hashes = access_list = None
    if tx.blobVersionedHashes is not None:
        hexes += tx.blobVersionedHashes
        blob_hashes = [value[2:] for value in tx.blobVersionedHashes]
    if tx.accessList is not None:
        access_list = []
        for entry in tx.accessList:
            hexes.append(entry.address)
            hexes += entry.storageKeys
            access_list.append({"address": entry.address, "storageKeys": entry.storageKeys})
    # Positional: with keywords, the constructor alone costs more than all the rest here.
    return Transaction(
        tx.hash[2:],
        int(tx.transactionIndex, 16),
        tx.sender[2:],
        None if to is None else to[2:],
        int(tx.value, 16),
        None if gas is None else int(gas, 16),
        None if price is None else int(price, 16),
        None if nonce is None else int(nonce, 16),
        calldata[2:],
        None if kind is None else int(kind, 16),
        None if fee is None else int(fee, 16),
        None if tip is None else int(tip, 16),
        None if blob_fee is None else int(blob_fee, 16),
        blob_hashes,
        access_list,
    )


def _block(raw: WireBlock) -> Block | None:
    """A Block, or None if anything is not strict hex, or not lower-case, or too wide.

    Values are only cut (value[2:]), not lower-cased: nodes answer lower-case hex, and a block
    that does not is left to parse_block rather than paying .lower() on every value of every
    block.
    """
    hexes: list[str | None] = [
        raw.number,
        raw.hash,
        raw.parentHash,
        raw.timestamp,
        raw.miner,
        raw.gasUsed,
        raw.gasLimit,
        raw.baseFeePerGas,
        raw.size,
        raw.extraData,
        raw.stateRoot,
        raw.transactionsRoot,
        raw.receiptsRoot,
        raw.logsBloom,
        raw.sha3Uncles,
        raw.mixHash,
        raw.nonce,
        raw.difficulty,
        raw.totalDifficulty,
        raw.blobGasUsed,
        raw.excessBlobGas,
        raw.withdrawalsRoot,
        raw.parentBeaconBlockRoot,
        raw.requestsHash,
    ]
    int64s = [raw.number, raw.timestamp, raw.gasUsed, raw.gasLimit, raw.size]
    int64s += (raw.blobGasUsed, raw.excessBlobGas)
    data = [] if raw.extraData is None else [raw.extraData]
    transactions = [_transaction(tx, hexes, int64s, data) for tx in raw.transactions]
    withdrawals = None
    if raw.withdrawals is not None:
        withdrawals = []
        for w in raw.withdrawals:
            hexes += (w.index, w.validatorIndex, w.address, w.amount)
            int64s += (w.index, w.validatorIndex, w.amount)
            withdrawals.append(
                Withdrawal(
                    int(w.index, 16), int(w.validatorIndex, 16), w.address[2:], int(w.amount, 16)
                )
            )
    if odd(data) or too_wide(int64s, 18) or not check_hex(hexes):
        return None  # parse_block decides, and names what it refuses
    if withdrawals is not None and len({w.index for w in withdrawals}) != len(withdrawals):
        return None  # a repeated withdrawal index: parse_block names it
    return Block(
        number=int(raw.number, 16),
        hash=raw.hash[2:],
        parent_hash=raw.parentHash[2:],
        timestamp=int(raw.timestamp, 16),
        miner=_hex(raw.miner),
        gas_used=_quantity(raw.gasUsed),
        gas_limit=_quantity(raw.gasLimit),
        base_fee_per_gas=_quantity(raw.baseFeePerGas),
        transactions=transactions,
        size=_quantity(raw.size),
        extra_data=_hex(raw.extraData),
        state_root=_hex(raw.stateRoot),
        transactions_root=_hex(raw.transactionsRoot),
        receipts_root=_hex(raw.receiptsRoot),
        logs_bloom=_hex(raw.logsBloom),
        sha3_uncles=_hex(raw.sha3Uncles),
        mix_hash=_hex(raw.mixHash),
        nonce=_hex(raw.nonce),
        difficulty=_quantity(raw.difficulty),
        total_difficulty=_quantity(raw.totalDifficulty),
        blob_gas_used=_quantity(raw.blobGasUsed),
        excess_blob_gas=_quantity(raw.excessBlobGas),
        withdrawals_root=_hex(raw.withdrawalsRoot),
        parent_beacon_block_root=_hex(raw.parentBeaconBlockRoot),
        requests_hash=_hex(raw.requestsHash),
        withdrawals=withdrawals,
    )


def to_block(raw: WireBlock, expected_number: int) -> Block:
    """A checked Block; on any doubt, parse_block decides (and names the problem)."""
    try:
        block = _block(raw)
        if (
            block is None
            or block.number != expected_number
            or any(tx.tx_index != position for position, tx in enumerate(block.transactions))
        ):
            raise ValueError
    except ValueError:  # int() of a quantity that is not hex, a type above a smallint
        return parse_block(msgspec.to_builtins(raw), expected_number)
    return block
