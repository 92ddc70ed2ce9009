"""The fast path from JSON-RPC receipts (eth_getBlockReceipts, eth_getTransactionReceipt) to
checked Receipts: msgspec structs, the block's hex checked in a few C passes (wire.check_hex).

As in wire.py, this path only ever accepts: an answer it doubts in any way (an error, a null,
upper-case hex, a receipt that does not match its block) goes to receipts.py, the reference,
which accepts it or names what is wrong. The logsBloom of each receipt is skipped unread.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from indexer.chain.model import Block, Log, Receipt
from indexer.chain.receipts import check_log_order, parse_block_receipts, parse_receipt
from indexer.chain.wire import (
    Address,
    Data,
    Hash,
    Int16,
    Int32,
    Int64,
    Uint256,
    check_hex,
    odd,
    results_by_id,
    too_wide,
)

Topics = Annotated[list[Hash], msgspec.Meta(max_length=4)]


class WireLog(msgspec.Struct, gc=False):
    logIndex: Int32
    transactionIndex: Int32
    transactionHash: Hash
    blockHash: Hash
    address: Address
    topics: Topics
    data: Data
    blockNumber: Int64 | None = None
    removed: bool = False  # null or anything but a boolean: the reference decides


class WireReceipt(msgspec.Struct, gc=False):
    transactionHash: Hash
    transactionIndex: Int32
    blockHash: Hash
    blockNumber: Int64
    gasUsed: Int64
    cumulativeGasUsed: Int64
    logs: list[WireLog]
    status: Int16 | None = None
    effectiveGasPrice: Uint256 | None = None
    contractAddress: Address | None = None


class WireBlockReceipts(msgspec.Struct, gc=False):
    id: int | str | None = None
    result: list[WireReceipt] | None = None
    error: Any = None


class WireTransactionReceipt(msgspec.Struct, gc=False):
    id: int | str | None = None
    result: WireReceipt | None = None
    error: Any = None


_BLOCK_RECEIPTS = msgspec.json.Decoder(list[WireBlockReceipts])
_TRANSACTION_RECEIPTS = msgspec.json.Decoder(list[WireTransactionReceipt])


def decode_block_receipts_batch(body: bytes, ids: list[int]) -> list[list[WireReceipt]] | None:
    """Each call's receipts in request order, or None if anything is unusual."""
    try:
        return results_by_id(_BLOCK_RECEIPTS.decode(body), ids)
    except msgspec.MsgspecError:
        return None


def decode_transaction_receipts_batch(body: bytes, ids: list[int]) -> list[WireReceipt] | None:
    """Each call's receipt in request order, or None if anything is unusual."""
    try:
        return results_by_id(_TRANSACTION_RECEIPTS.decode(body), ids)
    except msgspec.MsgspecError:
        return None


class _Checks:
    """The values of a block's receipts, checked once for the whole block."""

    def __init__(self) -> None:
        self.hexes: list[str | None] = []
        self.int64s: list[str | None] = []
        self.int32s: list[str | None] = []
        self.data: list[str] = []

    def passed(self) -> bool:
        return not (
            odd(self.data)
            or too_wide(self.int64s, 18)
            or too_wide(self.int32s, 10)
            or not check_hex(self.hexes)
        )


def _receipt(raw: WireReceipt, block: Block, position: int, checks: _Checks) -> Receipt | None:
    """The receipt, or None if it is not plainly the receipt of `block`'s `position`."""
    tx_hash, block_hash, status = raw.transactionHash, raw.blockHash, raw.status
    if (
        position >= len(block.transactions)
        or tx_hash[2:] != block.transactions[position].hash
        or block_hash[2:] != block.hash
        or int(raw.transactionIndex, 16) != position
        or int(raw.blockNumber, 16) != block.number
        or status not in (None, "0x0", "0x1")
    ):
        return None
    checks.hexes += (tx_hash, raw.transactionIndex, block_hash, raw.blockNumber, raw.gasUsed)
    checks.hexes += (raw.cumulativeGasUsed, raw.effectiveGasPrice, raw.contractAddress)
    checks.int64s += (raw.gasUsed, raw.cumulativeGasUsed)
    logs = []
    # A log repeats its receipt's transaction index and block number: the very strings, checked
    # with the receipt's, or the reference decides (a "0x01" for "0x1" is not wrong, only rare).
    tx_index, number = raw.transactionIndex, raw.blockNumber
    for log in raw.logs:
        if (
            log.transactionHash != tx_hash
            or log.blockHash != block_hash
            or log.transactionIndex != tx_index
            or (log.blockNumber is not None and log.blockNumber != number)
            or log.removed
        ):
            return None
        checks.hexes += (log.logIndex, log.address, log.data)
        checks.hexes += log.topics
        checks.int32s.append(log.logIndex)
        checks.data.append(log.data)
        topics = [topic[2:] for topic in log.topics]
        logs.append(
            Log(int(log.logIndex, 16), position, tx_hash[2:], log.address[2:], topics, log.data[2:])
        )
    return Receipt(
        position,
        tx_hash[2:],
        block_hash[2:],
        block.number,
        None if status is None else int(status, 16),
        int(raw.gasUsed, 16),
        int(raw.cumulativeGasUsed, 16),
        None if raw.effectiveGasPrice is None else int(raw.effectiveGasPrice, 16),
        None if raw.contractAddress is None else raw.contractAddress[2:],
        logs,
    )


def _fast_block_receipts(raw: list[WireReceipt], block: Block) -> list[Receipt] | None:
    if len(raw) != len(block.transactions):
        return None
    checks = _Checks()
    receipts = []
    for position, wire in enumerate(raw):
        receipt = _receipt(wire, block, position, checks)
        if receipt is None:
            return None
        receipts.append(receipt)
    if not checks.passed():
        return None
    check_log_order(block, receipts)  # raises BadChainData, with the reference's message
    return receipts


def to_block_receipts(raw: list[WireReceipt], block: Block) -> list[Receipt]:
    """`block`'s checked receipts; on any doubt, parse_block_receipts decides."""
    try:
        receipts = _fast_block_receipts(raw, block)
    except ValueError:  # int() of a value that is not hex
        receipts = None
    if receipts is None:
        return parse_block_receipts(msgspec.to_builtins(raw), block)
    return receipts


def to_receipt(raw: WireReceipt, block: Block, position: int) -> Receipt:
    """The checked receipt of `block`'s transaction at `position`; the reference on any doubt."""
    checks = _Checks()
    try:
        receipt = _receipt(raw, block, position, checks)
    except ValueError:
        receipt = None
    if receipt is None or not checks.passed():
        return parse_receipt(msgspec.to_builtins(raw), block, position)
    return receipt
