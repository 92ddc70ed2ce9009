"""What the answers to each kind of call must be, checked inside the request that fetched them.

A decoder turns a batch's body into results in call order, or raises BadChainData; raised
there, inside Transport.send, bad data is counted (`outcome="bad_data"`) and retried like
any failed request, instead of surfacing after the request was already counted as ok.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from indexer.chain.envelope import results_in_order
from indexer.chain.model import (
    BadChainData,
    Block,
    Receipt,
    parse_block,
    parse_header_hash,
    parse_quantity,
    quantity_field,
    required_data_field,
)
from indexer.chain.receipts import parse_block_receipts, parse_receipt
from indexer.chain.receipts_wire import (
    decode_block_receipts_batch,
    decode_transaction_receipts_batch,
    to_block_receipts,
    to_receipt,
)
from indexer.chain.redaction import Redactor
from indexer.chain.wire import decode_block_batch, to_block

Calls = Sequence[tuple[str, list[Any]]]
# (body, the ids sent, the calls, the provider's redactor) -> results in call order.
Decoder = Callable[[bytes, list[int], Calls, Redactor], list[Any]]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is decoded: synchronous, no await inside.

    Decoding a batch allocates hundreds of thousands of objects (a mainnet batch of receipts:
    15,000 receipts, 30,000 logs), each young collection walks them all again, and with the
    collector on, decoding and checking 100 mainnet blocks' receipts took ~1.7x as long
    (measured: 277 vs 480 blocks/s). Nothing decoded from JSON can form a cycle.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _block_numbers(calls: Calls) -> list[int]:
    """The block each eth_getBlockByNumber call asked for (we wrote the hex ourselves)."""
    return [int(params[0], 16) for _, params in calls]


def decode_blocks(raw: bytes, ids: list[int], calls: Calls, redact: Redactor) -> list[Block | None]:
    """Full blocks, checked: the fast path first, anything unusual the careful way.

    A null stays None: the block is not available yet, and Fetcher._fetch_batch retries it.
    """
    numbers = _block_numbers(calls)
    with gc_paused():
        wire = decode_block_batch(raw, ids)
        if wire is not None:
            return [to_block(block, n) for block, n in zip(wire, numbers, strict=True)]
    results = results_in_order(raw, ids, calls, redact)
    return [
        None if result is None else parse_block(result, n)
        for result, n in zip(results, numbers, strict=True)
    ]


def decode_header_hashes(
    raw: bytes, ids: list[int], calls: Calls, redact: Redactor
) -> list[str | None]:
    """The checked hash of each header-only block (reorg checks compare them); null stays None."""
    results = results_in_order(raw, ids, calls, redact)
    return [
        None if result is None else parse_header_hash(result, n)
        for result, n in zip(results, _block_numbers(calls), strict=True)
    ]


def decode_quantities(raw: bytes, ids: list[int], calls: Calls, redact: Redactor) -> list[int]:
    """Results that must be quantities fitting a bigint: a chain id, a block number."""
    results = results_in_order(raw, ids, calls, redact)
    return [
        parse_quantity(result, "int64", f"the {method} result")
        for result, (method, _) in zip(results, calls, strict=True)
    ]


def block_receipts_decoder(blocks: Sequence[Block]) -> Decoder:
    """Checks eth_getBlockReceipts answers against `blocks`, found by each call's block number.

    By the call's own parameter, not by position: a batch over the response cap is split, and
    each half decoded with this same decoder.
    """
    by_number = {hex(block.number): block for block in blocks}

    def decode(raw: bytes, ids: list[int], calls: Calls, redact: Redactor) -> list[list[Receipt]]:
        targets = [by_number[params[0]] for _, params in calls]
        with gc_paused():
            wire = decode_block_receipts_batch(raw, ids)
            if wire is not None:
                return [to_block_receipts(w, b) for w, b in zip(wire, targets, strict=True)]
        results = results_in_order(raw, ids, calls, redact)
        return [parse_block_receipts(r, b) for r, b in zip(results, targets, strict=True)]

    return decode


def transaction_receipts_decoder(blocks: Sequence[Block]) -> Decoder:
    """Checks eth_getTransactionReceipt answers against the transactions of `blocks`, found by
    each call's transaction hash; a null (an unknown transaction) is bad data."""
    by_hash = {
        "0x" + tx.hash: (block, position)
        for block in blocks
        for position, tx in enumerate(block.transactions)
    }

    def decode(raw: bytes, ids: list[int], calls: Calls, redact: Redactor) -> list[Receipt]:
        targets = [by_hash[params[0]] for _, params in calls]
        with gc_paused():
            wire = decode_transaction_receipts_batch(raw, ids)
            if wire is not None:
                return [to_receipt(w, *t) for w, t in zip(wire, targets, strict=True)]
        results = results_in_order(raw, ids, calls, redact)
        return [parse_receipt(r, *target) for r, target in zip(results, targets, strict=True)]

    return decode


def decode_tagged_numbers(
    raw: bytes, ids: list[int], calls: Calls, redact: Redactor
) -> list[int | None]:
    """The block number of each tagged header; a null (no such block) stays None."""
    results = results_in_order(raw, ids, calls, redact)
    numbers: list[int | None] = []
    for result, (_, params) in zip(results, calls, strict=True):
        if result is not None and not isinstance(result, dict):
            raise BadChainData(f"the {params[0]} block is not a block object")
        numbers.append(
            None
            if result is None
            else quantity_field(result, "number", f"the {params[0]} block", "int64", required=True)
        )
    return numbers


def decode_header_links(
    raw: bytes, ids: list[int], calls: Calls, redact: Redactor
) -> list[tuple[bytes, bytes] | None]:
    """(hash, parentHash) of each header-only block, checked; a null stays None."""
    results = results_in_order(raw, ids, calls, redact)
    links: list[tuple[bytes, bytes] | None] = []
    for result, (_, params) in zip(results, calls, strict=True):
        if result is None:
            links.append(None)
            continue
        number = int(params[0], 16)
        where = f"block {number}"
        block_hash = parse_header_hash(result, number)
        parent = required_data_field(result, "parentHash", where, 32)
        links.append((bytes.fromhex(block_hash), bytes.fromhex(parent)))
    return links
