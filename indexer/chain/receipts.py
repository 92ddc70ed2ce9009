"""Receipts and their logs, parsed and checked against the block they belong to.

A receipt is only worth storing if it is the receipt of the transaction the block holds: the
provider may answer from another block (a reorg between the block and its receipts, a backend
behind another), leave one out, or answer a log that was removed. So every receipt is checked
against its block (same transaction hash at the same index, same block hash and number) and
every log against its receipt, and a block's log indexes must increase. Any mismatch is
BadChainData: the request is counted as bad data and retried, and nothing is stored.

Like model.parse_block, this is the reference: receipts_wire.py is the fast path for
well-formed answers and hands anything it doubts back here, where the messages live.
"""

from __future__ import annotations

from typing import Any

from indexer.chain.model import (
    BadChainData,
    Block,
    Log,
    Receipt,
    Width,
    data_field,
    quantity_field,
    required_data_field,
    shown,
)

MAX_TOPICS = 4  # LOG0..LOG4


def _required_quantity(raw: dict[str, Any], key: str, where: str, width: Width) -> int:
    value = quantity_field(raw, key, where, width, required=True)
    assert value is not None
    return value


def _same(what: str, got: Any, expected: Any, where: str, hint: str = "") -> None:
    if got != expected:
        raise BadChainData(f"{where}: {what} is {got}, expected {expected}{hint}")


REORG_HINT = " (a reorg between the block and its receipts?)"


def parse_log(raw: Any, receipt: Receipt, where: str) -> Log:
    """One log of `receipt`, which it must name: same transaction, index and block."""
    if not isinstance(raw, dict):
        raise BadChainData(f"{where}: expected a log object, got {shown(raw)}")
    log_index = _required_quantity(raw, "logIndex", where, "int32")
    tx_hash = required_data_field(raw, "transactionHash", where, 32)
    _same("transactionHash", f"0x{tx_hash}", f"0x{receipt.tx_hash}", where)
    tx_index = _required_quantity(raw, "transactionIndex", where, "int32")
    _same("transactionIndex", tx_index, receipt.tx_index, where)
    block_hash = required_data_field(raw, "blockHash", where, 32)
    _same("blockHash", f"0x{block_hash}", f"0x{receipt.block_hash}", where, REORG_HINT)
    block_number = quantity_field(raw, "blockNumber", where, "int64")
    if block_number is not None:
        _same("blockNumber", block_number, receipt.block_number, where)
    removed = raw.get("removed")
    if removed is not None and removed is not False:
        raise BadChainData(f"{where}: removed is {shown(removed)} (a log reorged out)")
    topics = raw.get("topics")
    if not isinstance(topics, list) or len(topics) > MAX_TOPICS:
        raise BadChainData(f"{where}: topics is not a list of 0 to 4 topics: {shown(topics)}")
    return Log(
        log_index=log_index,
        tx_index=tx_index,
        tx_hash=tx_hash,
        address=required_data_field(raw, "address", where, 20),
        topics=[
            required_data_field({"topic": topic}, "topic", f"{where} topic {i}", 32)
            for i, topic in enumerate(topics)
        ],
        data=required_data_field(raw, "data", where, None),
    )


def parse_receipt(raw: Any, block: Block, position: int) -> Receipt:
    """The receipt of `block`'s transaction at `position`, checked against it, logs included."""
    where = f"block {block.number} receipt {position}"
    if raw is None:
        raise BadChainData(f"{where}: the provider returned null (receipt not available)")
    if not isinstance(raw, dict):
        raise BadChainData(f"{where}: expected a receipt object, got {shown(raw)}")
    if position >= len(block.transactions):
        raise BadChainData(f"{where}: the block has {len(block.transactions)} transactions")
    tx = block.transactions[position]
    tx_hash = required_data_field(raw, "transactionHash", where, 32)
    _same("transactionHash", f"0x{tx_hash}", f"0x{tx.hash}", where, REORG_HINT)
    tx_index = _required_quantity(raw, "transactionIndex", where, "int32")
    _same("transactionIndex", tx_index, position, where)
    block_hash = required_data_field(raw, "blockHash", where, 32)
    _same("blockHash", f"0x{block_hash}", f"0x{block.hash}", where, REORG_HINT)
    _same(
        "blockNumber", _required_quantity(raw, "blockNumber", where, "int64"), block.number, where
    )
    status = quantity_field(raw, "status", where, "int16")  # absent before Byzantium
    if status not in (None, 0, 1):
        raise BadChainData(f"{where}: status is {shown(raw['status'])}, not 0x0 or 0x1")
    logs = raw.get("logs")
    if not isinstance(logs, list):
        raise BadChainData(f"{where}: 'logs' is not a list: {shown(logs)}")
    receipt = Receipt(
        tx_index=position,
        tx_hash=tx_hash,
        block_hash=block_hash,
        block_number=block.number,
        status=status,
        gas_used=_required_quantity(raw, "gasUsed", where, "int64"),
        cumulative_gas_used=_required_quantity(raw, "cumulativeGasUsed", where, "int64"),
        effective_gas_price=quantity_field(raw, "effectiveGasPrice", where, "uint256"),
        contract_address=data_field(raw, "contractAddress", where, 20),
        logs=[],
    )
    receipt.logs = [parse_log(log, receipt, f"{where} log {i}") for i, log in enumerate(logs)]
    return receipt


def check_log_order(block: Block, receipts: list[Receipt]) -> None:
    """A block's log indexes strictly increase, across its receipts (they count in the block)."""
    previous = -1
    for receipt in receipts:
        for log in receipt.logs:
            if log.log_index <= previous:
                raise BadChainData(
                    f"block {block.number} receipt {receipt.tx_index}: logIndex {log.log_index}"
                    f" after {previous} (log indexes must increase across the block)"
                )
            previous = log.log_index


def check_count(block: Block, count: int) -> None:
    if count != len(block.transactions):
        raise BadChainData(
            f"block {block.number}: {count} receipts for {len(block.transactions)} transactions"
        )


def parse_block_receipts(raw: Any, block: Block) -> list[Receipt]:
    """An eth_getBlockReceipts result: one receipt per transaction of `block`, in order."""
    if raw is None:
        raise BadChainData(f"block {block.number}: the provider returned null receipts")
    if not isinstance(raw, list):
        raise BadChainData(f"block {block.number}: receipts are not a list: {shown(raw)}")
    check_count(block, len(raw))
    receipts = [parse_receipt(receipt, block, i) for i, receipt in enumerate(raw)]
    check_log_order(block, receipts)
    return receipts


def attach_receipts(block: Block, receipts: list[Receipt]) -> None:
    """Set each transaction's receipt: all of them checked, or none set."""
    check_count(block, len(receipts))
    check_log_order(block, receipts)
    for tx, receipt in zip(block.transactions, receipts, strict=True):
        if receipt.tx_hash != tx.hash or receipt.block_hash != block.hash:
            raise BadChainData(f"block {block.number}: receipt {receipt.tx_index} is not its own")
    for tx, receipt in zip(block.transactions, receipts, strict=True):
        tx.receipt = receipt
