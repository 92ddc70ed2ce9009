"""PostgreSQL against the node, row by row and field by field: blocks, transactions with their
receipts, logs and withdrawals.

The expected side is what the node itself says — `eth_getBlockByNumber(n, true)`,
`eth_getBlockReceipts(n)` and `eth_getLogs` — checked first for agreeing with itself (the
receipts with their block, eth_getLogs with the receipts' logs). Every column of every table is
compared: a column the comparator does not know fails the comparison, and so does a field the
node returns that is neither stored nor listed here as deliberately not stored. Counts are
compared both ways (nothing missing, nothing extra) and each table's key is checked for
duplicates with count(*) against count(DISTINCT key).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from indexer.datasets import DATASETS
from tests.support.evm.jsonrpc import JsonRpc

BATCH = 100  # blocks per batched request
LOGS_SPAN = 1_000  # blocks per eth_getLogs call

Json = dict[str, Any]
Database = asyncpg.Pool | asyncpg.Connection  # a connection: to see its open transaction
Row = dict[str, Any]
Rows = dict[tuple[int, ...], Row]


# --- the node's values, in the stored types -------------------------------------------------


def quantity(value: str | None) -> int | None:
    return None if value is None else int(value, 16)


def data(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value[2:])


def lower_json(value: Any) -> Any:
    """Every string of a JSON value lower-cased (access lists are stored so)."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [lower_json(v) for v in value]
    if isinstance(value, dict):
        return {k: lower_json(v) for k, v in value.items()}
    return value


def hashes(value: list[str] | None) -> list[bytes] | None:
    return None if value is None else [bytes.fromhex(h[2:]) for h in value]


def topic(position: int) -> Callable[[list[str]], bytes | None]:
    return lambda topics: data((topics + [None] * 4)[position])  # type: ignore[operator]


def same(value: Any) -> Any:
    return value


# Each table: column -> (the node object's key, how its value becomes the stored one).
Field = tuple[str, Callable[[Any], Any]]

BLOCK_FIELDS: dict[str, Field] = {
    "number": ("number", quantity),
    "hash": ("hash", data),
    "parent_hash": ("parentHash", data),
    "timestamp": ("timestamp", quantity),
    "miner": ("miner", data),
    "gas_used": ("gasUsed", quantity),
    "gas_limit": ("gasLimit", quantity),
    "base_fee_per_gas": ("baseFeePerGas", quantity),
    "tx_count": ("transactions", len),
    "size": ("size", quantity),
    "extra_data": ("extraData", data),
    "state_root": ("stateRoot", data),
    "transactions_root": ("transactionsRoot", data),
    "receipts_root": ("receiptsRoot", data),
    "logs_bloom": ("logsBloom", data),
    "sha3_uncles": ("sha3Uncles", data),
    "mix_hash": ("mixHash", data),
    "nonce": ("nonce", data),
    "difficulty": ("difficulty", quantity),
    "total_difficulty": ("totalDifficulty", quantity),
    "blob_gas_used": ("blobGasUsed", quantity),
    "excess_blob_gas": ("excessBlobGas", quantity),
    "withdrawals_root": ("withdrawalsRoot", data),
    "parent_beacon_block_root": ("parentBeaconBlockRoot", data),
    "requests_hash": ("requestsHash", data),
}
# Block fields kept elsewhere: rows of their own, or (uncles) always empty since the merge.
BLOCK_KEYS_ELSEWHERE = {"withdrawals", "uncles"}

TRANSACTION_FIELDS: dict[str, Field] = {
    "block_number": ("blockNumber", quantity),
    "tx_index": ("transactionIndex", quantity),
    "hash": ("hash", data),
    "from_address": ("from", data),
    "to_address": ("to", data),
    "value": ("value", quantity),
    "gas": ("gas", quantity),
    "gas_price": ("gasPrice", quantity),
    "nonce": ("nonce", quantity),
    "input": ("input", data),
    "type": ("type", quantity),
    "max_fee_per_gas": ("maxFeePerGas", quantity),
    "max_priority_fee_per_gas": ("maxPriorityFeePerGas", quantity),
    "max_fee_per_blob_gas": ("maxFeePerBlobGas", quantity),
    "blob_versioned_hashes": ("blobVersionedHashes", hashes),
    "access_list": ("accessList", lower_json),
}
# The receipt, merged into its transaction's row.
RECEIPT_FIELDS: dict[str, Field] = {
    "status": ("status", quantity),
    "gas_used": ("gasUsed", quantity),
    "cumulative_gas_used": ("cumulativeGasUsed", quantity),
    "effective_gas_price": ("effectiveGasPrice", quantity),
    "contract_address": ("contractAddress", data),
}
# Transaction fields not stored: the block's (checked equal to it), the chain's (chainId) and
# the signature; DESIGN.md's transaction row has no column for them.
TRANSACTION_KEYS_OF_THE_BLOCK = {"blockHash": "hash", "blockTimestamp": "timestamp"}
TRANSACTION_KEYS_NOT_STORED = {*TRANSACTION_KEYS_OF_THE_BLOCK, "chainId", "v", "r", "s", "yParity"}
# Receipt fields that repeat the transaction or its block: not stored, checked equal instead.
RECEIPT_KEYS_REPEATED = {
    "transactionHash": "hash",
    "transactionIndex": "transactionIndex",
    "blockHash": "blockHash",
    "blockNumber": "blockNumber",
    "from": "from",
    "to": "to",
    "type": "type",
}
# Receipt fields not stored: the logs (rows of their own), the receipt's own bloom, blob gas.
RECEIPT_KEYS_NOT_STORED = {"logs", "logsBloom", "blobGasPrice", "blobGasUsed", "blockTimestamp"}

LOG_FIELDS: dict[str, Field] = {
    "block_number": ("blockNumber", quantity),
    "log_index": ("logIndex", quantity),
    "tx_index": ("transactionIndex", quantity),
    "tx_hash": ("transactionHash", data),
    "address": ("address", data),
    **{f"topic{i}": ("topics", topic(i)) for i in range(4)},
    "data": ("data", data),
}
# Log fields not stored: the block's hash and timestamp, and `removed` (false in a block read).
LOG_KEYS_NOT_STORED = {"blockHash", "blockTimestamp", "removed"}

WITHDRAWAL_FIELDS: dict[str, Field] = {
    "block_number": ("blockNumber", same),  # not the node's: added from the block
    "index": ("index", quantity),
    "validator_index": ("validatorIndex", quantity),
    "address": ("address", data),
    "amount": ("amount", quantity),
}

TABLE_KEYS = {
    "blocks": ("number",),
    "transactions": ("block_number", "tx_index"),
    "logs": ("block_number", "log_index"),
    "withdrawals": ("block_number", "index"),
}


# --- the node -------------------------------------------------------------------------------


@dataclass
class NodeChain:
    """Blocks start..end as the node returns them: full blocks, receipts, and eth_getLogs."""

    blocks: dict[int, Json]
    receipts: dict[int, list[Json]]
    logs: list[Json]

    def transactions(self) -> Iterable[tuple[Json, Json]]:
        """(transaction, receipt) of every block, in order."""
        for number, block in sorted(self.blocks.items()):
            yield from zip(block["transactions"], self.receipts[number], strict=True)


async def read_node(url: str, start: int, end: int, get_logs: bool = True) -> NodeChain:
    """Blocks, receipts and logs start..end from the node, checked for agreeing with itself.

    Without `get_logs` (the simulated chain has no eth_getLogs) the logs are the receipts'."""
    blocks: dict[int, Json] = {}
    receipts: dict[int, list[Json]] = {}
    logs: list[Json] = []
    async with JsonRpc(url) as node:
        for low in range(start, end + 1, BATCH):
            numbers = range(low, min(low + BATCH, end + 1))
            found = await node.batch([("eth_getBlockByNumber", [hex(n), True]) for n in numbers])
            blocks.update(zip(numbers, found, strict=True))
            found = await node.batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers])
            receipts.update(zip(numbers, found, strict=True))
        for low in range(start, end + 1, LOGS_SPAN) if get_logs else ():
            span = {"fromBlock": hex(low), "toBlock": hex(min(low + LOGS_SPAN - 1, end))}
            logs += await node.call("eth_getLogs", span)
    if not get_logs:
        logs = [log for n in sorted(receipts) for r in receipts[n] for log in r["logs"]]
    chain = NodeChain(blocks, receipts, logs)
    _check_node(chain)
    return chain


def _check_node(chain: NodeChain) -> None:
    """The node agrees with itself: receipts with blocks, eth_getLogs with the receipts."""
    for number, block in chain.blocks.items():
        assert block is not None and quantity(block["number"]) == number, f"node: block {number}"
        assert block.get("uncles", []) == [], f"node: block {number} has uncles"
        receipts = chain.receipts[number]
        assert receipts is not None, f"node: no receipts for block {number}"
        assert len(receipts) == len(block["transactions"]), f"node: block {number} receipts"
        for tx, receipt in zip(block["transactions"], receipts, strict=True):
            assert quantity(tx["blockNumber"]) == number, f"node: block {number} transaction"
            for tx_key, block_key in TRANSACTION_KEYS_OF_THE_BLOCK.items():
                assert tx.get(tx_key, block[block_key]) == block[block_key], (
                    f"node: block {number} transaction {tx_key} {tx.get(tx_key)}"
                )
            for receipt_key, tx_key in RECEIPT_KEYS_REPEATED.items():
                assert receipt.get(receipt_key) == tx.get(tx_key), (
                    f"node: block {number} receipt {receipt_key} {receipt.get(receipt_key)}"
                    f" != transaction {tx_key} {tx.get(tx_key)}"
                )
            for log in receipt["logs"]:
                assert log["transactionHash"] == tx["hash"] and log["blockHash"] == block["hash"]
    from_receipts = [log for _, receipt in chain.transactions() for log in receipt["logs"]]
    assert chain.logs == from_receipts, (
        f"node: eth_getLogs returned {len(chain.logs)} logs, the receipts hold"
        f" {len(from_receipts)}, or they differ"
    )


def _sources(fields: dict[str, Field]) -> set[str]:
    return {key for key, _ in fields.values()}


def _row(fields: dict[str, Field], raw: Json) -> Row:
    return {column: convert(raw.get(key)) for column, (key, convert) in fields.items()}


def _add(rows: Rows, table: str, row: Row) -> None:
    key = tuple(row[column] for column in TABLE_KEYS[table])
    assert key not in rows, f"the node gives {table} {key} twice"
    rows[key] = row


def _assert_known(chain: NodeChain) -> None:
    """Every field the node returns is stored, or listed here as deliberately not stored."""
    kinds = [
        ("block", chain.blocks.values(), _sources(BLOCK_FIELDS) | BLOCK_KEYS_ELSEWHERE),
        (
            "transaction",
            [tx for tx, _ in chain.transactions()],
            _sources(TRANSACTION_FIELDS) | TRANSACTION_KEYS_NOT_STORED,
        ),
        (
            "receipt",
            [receipt for _, receipt in chain.transactions()],
            _sources(RECEIPT_FIELDS) | set(RECEIPT_KEYS_REPEATED) | RECEIPT_KEYS_NOT_STORED,
        ),
        ("log", chain.logs, _sources(LOG_FIELDS) | LOG_KEYS_NOT_STORED),
    ]
    for kind, objects, known in kinds:
        unknown = {key for raw in objects for key in raw} - known
        assert not unknown, (
            f"the node's {kind}s have fields the comparator does not know: {unknown}"
        )


def expected_rows(chain: NodeChain, datasets: Iterable[str] = DATASETS) -> dict[str, Rows]:
    """The rows each table must hold for the node's blocks, given the chain's datasets."""
    _assert_known(chain)
    wanted = set(datasets)
    rows: dict[str, Rows] = {table: {} for table in TABLE_KEYS}
    for number, block in chain.blocks.items():
        _add(rows["blocks"], "blocks", _row(BLOCK_FIELDS, block))
        for withdrawal in block.get("withdrawals") or []:
            own = {**withdrawal, "blockNumber": number}
            _add(rows["withdrawals"], "withdrawals", _row(WITHDRAWAL_FIELDS, own))
    if "transactions" in wanted:
        for tx, receipt in chain.transactions():
            row = _row(TRANSACTION_FIELDS, tx)
            for column, (key, convert) in RECEIPT_FIELDS.items():
                row[column] = convert(receipt.get(key)) if "receipts" in wanted else None
            _add(rows["transactions"], "transactions", row)
    if "logs" in wanted:
        for log in chain.logs:
            assert log.get("removed") is False, log
            _add(rows["logs"], "logs", _row(LOG_FIELDS, log))
    return rows


# --- PostgreSQL -----------------------------------------------------------------------------


def _stored_value(column: str, value: Any) -> Any:
    """A stored value in the comparator's types: numeric as int, jsonb parsed, bytea as bytes."""
    if isinstance(value, Decimal):
        assert value == value.to_integral_value(), f"{column}: {value} is not a whole number"
        return int(value)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, str) and column == "access_list":
        return json.loads(value)
    if isinstance(value, list):
        return [_stored_value(column, v) for v in value]
    return value


async def stored_rows(pool: Database, chain_id: int) -> tuple[dict[str, Rows], list[str]]:
    """Each table's rows of the chain, and what is wrong with them regardless of the node:
    columns the comparator does not know, keys stored twice."""
    problems: list[str] = []
    tables: dict[str, Rows] = {}
    known = {
        "blocks": BLOCK_FIELDS,
        "transactions": {**TRANSACTION_FIELDS, **RECEIPT_FIELDS},
        "logs": LOG_FIELDS,
        "withdrawals": WITHDRAWAL_FIELDS,
    }
    for table, key in TABLE_KEYS.items():
        columns = await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1",
            table,
        )
        names = {c["column_name"] for c in columns} - {"chain_id"}
        if names != set(known[table]):
            problems.append(
                f"{table}: columns not compared {sorted(names - set(known[table]))},"
                f" columns missing {sorted(set(known[table]) - names)}"
            )
        counts = await pool.fetchrow(
            f"SELECT count(*) AS n, count(DISTINCT ({', '.join(key)})) AS d"
            f" FROM {table} WHERE chain_id = $1",
            chain_id,
        )
        if counts["n"] != counts["d"]:
            problems.append(f"{table}: {counts['n']} rows, {counts['d']} distinct keys {key}")
        records = await pool.fetch(f"SELECT * FROM {table} WHERE chain_id = $1", chain_id)
        rows: Rows = {}
        for record in records:
            row = {c: _stored_value(c, v) for c, v in record.items() if c != "chain_id"}
            rows[tuple(row.get(column) for column in key)] = row
        tables[table] = rows
    return tables, problems


# --- the comparison -------------------------------------------------------------------------


@dataclass
class Compared:
    """How many rows of each table matched the node exactly, and the node's data."""

    rows: dict[str, int]
    node: NodeChain


def differences(table: str, expected: Rows, stored: Rows, limit: int = 10) -> list[str]:
    """What differs between the node's rows and the stored ones, first `limit` of each kind."""
    found: list[str] = []
    missing = sorted(expected.keys() - stored.keys())
    extra = sorted(stored.keys() - expected.keys())
    if missing:
        found.append(f"{table}: {len(missing)} rows missing, first {missing[:limit]}")
    if extra:
        found.append(f"{table}: {len(extra)} rows not on the node, first {extra[:limit]}")
    wrong = [
        f"{table} {key} {column}: node {expected[key].get(column)!r:.120},"
        f" stored {stored[key].get(column)!r:.120}"
        for key in sorted(expected.keys() & stored.keys())
        for column in expected[key].keys() | stored[key].keys()
        if expected[key].get(column) != stored[key].get(column)
    ]
    if wrong:
        found.append(
            f"{table}: {len(wrong)} fields differ, first:\n  " + "\n  ".join(wrong[:limit])
        )
    return found


async def assert_matches_node(
    pool: Database,
    chain_id: int,
    url: str,
    head: int,
    datasets: Iterable[str] = DATASETS,
    get_logs: bool = True,
) -> Compared:
    """Every row the chain has in PostgreSQL is the node's blocks 0..head exactly, and the
    chain has no other: every column, nothing missing, nothing extra, nothing twice."""
    node = await read_node(url, 0, head, get_logs)
    expected = expected_rows(node, datasets)
    stored, problems = await stored_rows(pool, chain_id)
    for table in TABLE_KEYS:
        problems += differences(table, expected[table], stored[table])
    assert not problems, "PostgreSQL differs from the node:\n" + "\n".join(problems)
    return Compared({table: len(rows) for table, rows in expected.items()}, node)
