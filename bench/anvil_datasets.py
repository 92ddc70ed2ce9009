"""A real node with contracts that log: the indexer with every dataset beside the raw fetch
ceiling, ethereum-etl 2.4.2 and cryo, in the same rounds (issue 14, item 5).

anvil (npm @foundry-rs/anvil) is seeded here with `--blocks` (2,000) blocks of about
`--txs-per-block` (20) transactions: by default (`--workload evm`) the issue-13 anvil tests'
workload (tests/support/evm: a token, an emitter, a reverter and a factory, hand-assembled;
transfers, emits, reverts, creations; legacy, 2930 and 1559 transactions); with `--workload
simple`, `--contracts` (4) minimal contracts whose every call emits two logs (LOG2: a
constant topic, the caller; LOG1: the caller; the calldata as data), a quarter plain transfers
and the rest calls with 68 bytes of calldata. Then `--rounds` (3)
rounds, each, back to back on the same node:

  * raw ceiling: batched eth_getBlockByNumber(n, true) and eth_getBlockReceipts, bodies read
    but never parsed (aiohttp; `--raw-batch` per request, `--raw-in-flight` requests at once);
  * tindexer end to end: `run_loadtest(rpc_url=anvil)` (Temporal dev server, PostgreSQL, one
    `tindexer worker` with metrics and tracing on), the chain with every dataset (blocks,
    transactions, receipts, logs); stored block and transaction hashes and the log count are
    checked against the node; per-phase (fetch, store) seconds from the worker's own metrics;
  * ethereum-etl 2.4.2: `export_blocks_and_transactions`, `extract_csv_column` (the hashes)
    and `export_receipts_and_logs`, defaults, timed together, rows counted (Python 3.9 venv);
  * cryo (PyPI `cryo`, in its own venv with polars and pyarrow): `cryo.freeze(["blocks",
    "transactions", "logs"])` to parquet, timed, rows counted.

Transactions/s are medians over rounds. One extra run records a py-spy profile of the worker
(`--no-profile` skips it). Venvs: $TINDEXER_ETL_VENV (else /work/.cache/etl-2.4.2-py3.9),
$TINDEXER_CRYO_VENV (else /work/.cache/cryo-venv), created here when missing; py-spy from
$PY_SPY or PATH.

    .venv/bin/python bench/anvil_datasets.py        # or `make bench-anvil-datasets`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.anvil import ANVIL, CpuMeter, Diagnosis, batch, call, count_rows
from bench.common import provenance, scratch_directory, write_result
from bench.profiling import pyspy_binary

CACHE = Path(os.environ.get("TINDEXER_BENCH_CACHE", "/work/.cache"))
ETL_VENV = Path(os.environ.get("TINDEXER_ETL_VENV") or CACHE / "etl-2.4.2-py3.9")
CRYO_VENV = Path(os.environ.get("TINDEXER_CRYO_VENV") or CACHE / "cryo-venv")
ETL_VERSION = "2.4.2"


# --- the contracts ----------------------------------------------------------------------------


def runtime_code(topic: bytes) -> bytes:
    """On any call: copy the calldata to memory, LOG2(topic, caller) and LOG1(caller) of it."""
    assert len(topic) == 32
    return (
        bytes.fromhex("36600060003733")  # CALLDATACOPY(0, 0, CALLDATASIZE); CALLER
        + b"\x7f"
        + topic  # PUSH32 topic
        + bytes.fromhex("366000a2")  # LOG2(0, CALLDATASIZE, topic, caller)
        + bytes.fromhex("33366000a1")  # LOG1(0, CALLDATASIZE, caller)
        + b"\x00"  # STOP
    )


def init_code(runtime: bytes) -> bytes:
    """Return `runtime` as the deployed code."""
    size = len(runtime)
    assert size < 256
    prefix = bytes([0x60, size, 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3])
    assert len(prefix) == 0x0B
    return prefix + runtime


@contextlib.asynccontextmanager
async def seeded_anvil(
    work: Path, blocks: int, txs_per_block: int
) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    """anvil on a free port seeded with the evm workload (seed_workload): its process and URL;
    stopped afterwards."""
    from indexer.embedded import child_process, free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    with child_process(args, "127.0.0.1", port, log_path=work / "anvil.log") as anvil:
        await seed_workload(url, blocks, txs_per_block)
        yield anvil, url


async def seed_workload(url: str, blocks: int, txs_per_block: int) -> list[str]:
    """The issue-13 anvil tests' workload (tests/support/evm): four hand-assembled contracts
    (a token, an emitter, a reverter, a factory) deployed in block 1, then blocks of every kind
    of transaction (transfers, emits, reverts, creations, legacy/2930/1559) until head ==
    blocks - 1, txs_per_block/2 .. 3*txs_per_block/2 a block."""
    from tests.support.evm.jsonrpc import JsonRpc
    from tests.support.evm.workload import Workload

    async with JsonRpc(url) as node:
        workload = Workload(node)
        deployed = await workload.setup()
        await workload.mine(blocks - 2, most=txs_per_block * 3 // 2, least=txs_per_block // 2)
        head = await workload.head()
    if head != blocks - 1:
        raise RuntimeError(f"seeded head {head}, expected {blocks - 1}")
    return [deployed.token, deployed.emitter, deployed.reverter, deployed.factory]


async def seed(url: str, contracts: int, blocks: int, txs_per_block: int) -> list[str]:
    """Deploy the contracts (block 1), then mine blocks until head == blocks - 1."""
    async with aiohttp.ClientSession() as http:
        accounts = await call(http, url, "eth_accounts")
        await call(http, url, "evm_setAutomine", False)
        deploys = [
            (
                "eth_sendTransaction",
                [
                    {
                        "from": accounts[0],
                        "data": "0x" + init_code(runtime_code(bytes([i + 1]) * 32)).hex(),
                        "gas": hex(200_000),
                    }
                ],
            )
            for i in range(contracts)
        ]
        hashes = await batch(http, url, deploys)
        await call(http, url, "evm_mine")
        receipts = await batch(http, url, [("eth_getTransactionReceipt", [h]) for h in hashes])
        addresses = [r["contractAddress"] for r in receipts]
        assert all(r["status"] == "0x1" for r in receipts), receipts
        for number in range(2, blocks):
            sends = []
            for i in range(txs_per_block):
                sender = accounts[(number + i) % len(accounts)]
                if i % 4 == 0:
                    tx = {"from": sender, "to": accounts[(number + i + 1) % len(accounts)],
                          "value": hex(10**12 + i), "gas": hex(21_000)}  # fmt: skip
                else:
                    data = "0xa9059cbb" + f"{number:064x}" + f"{i:064x}"
                    tx = {"from": sender, "to": addresses[(number + i) % len(addresses)],
                          "data": data, "gas": hex(60_000)}  # fmt: skip
                sends.append(("eth_sendTransaction", [tx]))
            await batch(http, url, sends)
            await call(http, url, "evm_mine")
        head = int(await call(http, url, "eth_blockNumber"), 16)
    if head != blocks - 1:
        raise RuntimeError(f"seeded head {head}, expected {blocks - 1}")
    return addresses


async def node_contents(url: str, blocks: int) -> dict[str, Any]:
    """Every block's hash and transaction hashes, and the log count, straight from the node."""
    contents: list[tuple[bytes, list[bytes]]] = []
    logs = failed = 0
    async with aiohttp.ClientSession() as http:
        for start in range(0, blocks, 100):
            numbers = range(start, min(start + 100, blocks))
            raws = await batch(
                http, url, [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
            )
            receipts = await batch(http, url, [("eth_getBlockReceipts", [hex(n)]) for n in numbers])
            for number, raw, block_receipts in zip(numbers, raws, receipts, strict=True):
                assert int(raw["number"], 16) == number
                txs = [bytes.fromhex(tx["hash"][2:]) for tx in raw["transactions"]]
                contents.append((bytes.fromhex(raw["hash"][2:]), txs))
                logs += sum(len(r["logs"]) for r in block_receipts)
                failed += sum(r["status"] != "0x1" for r in block_receipts)
    return {"contents": contents, "logs": logs, "failed_transactions": failed}


# --- the raw ceiling --------------------------------------------------------------------------


async def raw_ceiling(url: str, blocks: int, batch_size: int, in_flight: int) -> float:
    """Blocks/s of batched full blocks + their receipts, bodies read, never parsed."""

    def body(start: int, method: str) -> bytes:
        end = min(start + batch_size, blocks)
        params = (
            (lambda n: [hex(n), True]) if method == "eth_getBlockByNumber" else (lambda n: [hex(n)])
        )
        return json.dumps(
            [
                {"jsonrpc": "2.0", "id": n, "method": method, "params": params(n)}
                for n in range(start, end)
            ]
        ).encode()

    todo = iter(range(0, blocks, batch_size))
    received = 0
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=in_flight * 2)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def post(data: bytes) -> None:
            nonlocal received
            async with http.post(url, data=data, headers=headers) as response:
                response.raise_for_status()
                received += len(await response.read())

        async def fetcher() -> None:
            for start in todo:
                await post(body(start, "eth_getBlockByNumber"))
                await post(body(start, "eth_getBlockReceipts"))

        await call(http, url, "eth_blockNumber")  # connection warm
        started = time.perf_counter()
        await asyncio.gather(*(fetcher() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
    assert received > blocks * 1_000, received  # blocks and receipts came back, not errors
    return blocks / seconds


# --- the indexer ------------------------------------------------------------------------------


def checker(node: dict[str, Any]):  # type: ignore[no-untyped-def]
    contents = node["contents"]

    async def check(pool: Any, chain_id: int) -> dict[str, Any]:
        async with pool.acquire() as conn:
            blocks = await conn.fetch(
                "SELECT number, hash, tx_count FROM blocks WHERE chain_id = $1 ORDER BY number",
                chain_id,
            )
            txs = await conn.fetch(
                "SELECT block_number, tx_index, hash, status FROM transactions WHERE chain_id = $1",
                chain_id,
            )
            logs = await conn.fetchval("SELECT count(*) FROM logs WHERE chain_id = $1", chain_id)
        stored_blocks = [(r["number"], bytes(r["hash"]), r["tx_count"]) for r in blocks]
        node_blocks = [(n, h, len(t)) for n, (h, t) in enumerate(contents)]
        stored_txs = {(r["block_number"], r["tx_index"]): bytes(r["hash"]) for r in txs}
        node_txs = {(n, i): tx for n, (_, t) in enumerate(contents) for i, tx in enumerate(t)}
        return {
            "blocks_stored": len(stored_blocks),
            "transactions_stored": len(stored_txs),
            "transactions_with_receipt": sum(r["status"] is not None for r in txs),
            "logs_stored": logs,
            "block_hashes_match": stored_blocks == node_blocks,
            "transaction_hashes_match": stored_txs == node_txs,
            "logs_match": logs == node["logs"],
        }

    return check


async def index_once(url: str, node: dict[str, Any], anvil_pid: int) -> dict[str, Any]:
    from indexer.loadtest import run_loadtest

    transactions = sum(len(t) for _, t in node["contents"])
    run = await run_loadtest(
        0,
        rpc_url=url,
        poll_seconds=0.05,  # the end seen within 50 ms: ~1 % of a run
        log=lambda *_: None,
        watch={"anvil": anvil_pid},
        check=checker(node),
    )
    checked = run.checks
    if not (
        checked["block_hashes_match"]
        and checked["transaction_hashes_match"]
        and checked["logs_match"]
        and checked["transactions_with_receipt"] == transactions
    ):
        raise AssertionError(f"stored data differs from the node: {checked}")
    return {
        "seconds": run.index_seconds,
        "blocks_per_second": round(run.blocks / run.index_seconds, 1),
        "transactions_per_second": round(transactions / run.index_seconds, 1),
        "phase_seconds": {k: round(v, 3) for k, v in run.phase_seconds.items()},
        "phase_count": run.phase_count,
        "lost_blocks": run.lost_blocks,
        "duplicate_blocks": run.duplicate_blocks,
        "activity_timeouts": run.activity_timeouts,
        "peak_rss_bytes": run.peak_rss_bytes,
        "cpu_seconds": run.cpu_seconds,
        **checked,
    }


# --- ethereum-etl and cryo --------------------------------------------------------------------


def _venv(path: Path, python: str, packages: list[str]) -> None:
    if (path / "bin" / "python").exists():
        return
    print(f"  creating {path} ({' '.join(packages)}) …", flush=True)
    for args in (
        [python, "-m", "venv", str(path)],
        [str(path / "bin" / "pip"), "install", "--quiet", *packages],
    ):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            raise RuntimeError(f"{' '.join(args)} failed: {(done.stderr or done.stdout)[-2000:]}")


def etl_venv() -> Path:
    from bench.anvil import etl_python

    _venv(ETL_VENV, etl_python(), [f"ethereum-etl=={ETL_VERSION}"])
    return ETL_VENV / "bin" / "ethereumetl"


def cryo_venv() -> Path:
    _venv(CRYO_VENV, sys.executable, ["cryo", "polars", "pyarrow"])
    return CRYO_VENV / "bin" / "python"


def etl_once(cli: Path, url: str, blocks: int, out: Path) -> dict[str, Any]:
    """Blocks and transactions, then receipts and logs of every transaction; defaults."""
    out.mkdir()
    steps = [
        [
            str(cli),
            "export_blocks_and_transactions",
            "--start-block",
            "0",
            "--end-block",
            str(blocks - 1),
            "--provider-uri",
            url,
            "--blocks-output",
            str(out / "blocks.csv"),
            "--transactions-output",
            str(out / "transactions.csv"),
        ],
        [
            str(cli),
            "extract_csv_column",
            "--input",
            str(out / "transactions.csv"),
            "--column",
            "hash",
            "--output",
            str(out / "hashes.txt"),
        ],
        [
            str(cli),
            "export_receipts_and_logs",
            "--transaction-hashes",
            str(out / "hashes.txt"),
            "--provider-uri",
            url,
            "--receipts-output",
            str(out / "receipts.csv"),
            "--logs-output",
            str(out / "logs.csv"),
        ],
    ]
    seconds = []
    for command in steps:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{command[1]}: exit {done.returncode}: {done.stderr[-2000:]}")
    total = sum(seconds)
    return {
        "seconds": round(total, 3),
        "step_seconds": dict(
            zip(
                ("blocks_and_transactions", "extract", "receipts_and_logs"),
                (round(s, 3) for s in seconds),
                strict=True,
            )
        ),
        "blocks_per_second": round(blocks / total, 1),
        "rows": {
            name: count_rows(out / f"{name}.csv")
            for name in ("blocks", "transactions", "receipts", "logs")
        },
    }


CRYO_SCRIPT = """
import json, sys, time
import cryo, polars
url, blocks, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
started = time.perf_counter()
cryo.freeze(["blocks", "transactions", "logs"], rpc=url, blocks=[f"0:{blocks}"],
            output_dir=out, no_verbose=True)
seconds = time.perf_counter() - started
import glob, os
rows = {}
for kind in ("blocks", "transactions", "logs"):
    files = [f for f in glob.glob(os.path.join(out, "*.parquet")) if f"__{kind}__" in f]
    rows[kind] = sum(polars.read_parquet(f).height for f in files)
print(json.dumps({"seconds": seconds, "rows": rows}))
"""


def cryo_once(python: Path, url: str, blocks: int, out: Path) -> dict[str, Any]:
    """cryo.freeze of blocks, transactions and logs to parquet, timed inside its process."""
    out.mkdir()
    done = subprocess.run(
        [str(python), "-c", CRYO_SCRIPT, url, str(blocks), str(out)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cryo: exit {done.returncode}: {done.stderr[-2000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "seconds": round(answer["seconds"], 3),
        "blocks_per_second": round(blocks / answer["seconds"], 1),
        "rows": answer["rows"],
    }


# --- main -------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2_000, help="blocks 0..N-1 on the node")
    parser.add_argument("--txs-per-block", type=int, default=20)
    parser.add_argument("--contracts", type=int, default=4, help="with --workload simple")
    parser.add_argument(
        "--workload",
        choices=("evm", "simple"),
        default="evm",
        help="evm: tests/support/evm's mixed workload; simple: transfers and calls to "
        "--contracts minimal contracts that log twice",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--raw-batch", type=int, default=50)
    parser.add_argument("--raw-in-flight", type=int, default=4)
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    parser.add_argument("--name", default="anvil-datasets")
    args = parser.parse_args()
    from indexer.embedded import child_process, free_port

    if not ANVIL.exists():
        raise SystemExit(f"anvil is not installed at {ANVIL}: run `make install`")
    command = " ".join(["make bench-anvil-datasets (.venv/bin/python bench/anvil_datasets.py",
                        *sys.argv[1:]]) + ")"  # fmt: skip
    result: dict[str, Any] = provenance(command)
    version = subprocess.check_output([str(ANVIL), "--version"], text=True)  # noqa: ASYNC221
    tools: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, make in (("ethereum_etl", etl_venv), ("cryo", cryo_venv)):
        try:
            tools[name] = make()
        except (OSError, RuntimeError) as exc:
            errors[name] = str(exc)
            print(f"  {name} could not be installed: {exc}", flush=True)
    work = scratch_directory("tindexer-anvil-datasets-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    anvil_args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    rounds: list[dict[str, Any]] = []
    diagnosis: dict[str, Any] | None = None
    try:
        with child_process(anvil_args, "127.0.0.1", port, log_path=work / "anvil.log") as anvil:
            print(
                f"seeding anvil: {args.contracts} contracts, {args.blocks:,} blocks …", flush=True
            )
            started = time.perf_counter()
            if args.workload == "evm":
                addresses = await seed_workload(url, args.blocks, args.txs_per_block)
            else:
                addresses = await seed(url, args.contracts, args.blocks, args.txs_per_block)
            seed_seconds = time.perf_counter() - started
            node = await node_contents(url, args.blocks)
            transactions = sum(len(t) for _, t in node["contents"])
            print(
                f"  {transactions:,} transactions, {node['logs']:,} logs, "
                f"{node['failed_transactions']} failed, in {seed_seconds:.0f} s",
                flush=True,
            )
            for number in range(args.rounds):
                one: dict[str, Any] = {}
                with CpuMeter(anvil.pid) as meter:
                    raw = await raw_ceiling(url, args.blocks, args.raw_batch, args.raw_in_flight)
                one["raw"] = {"blocks_per_second": round(raw, 1), "anvil_cores": meter.cores}
                one["tindexer"] = await index_once(url, node, anvil.pid)
                if "ethereum_etl" in tools and "ethereum_etl" not in errors:
                    try:
                        one["ethereum_etl"] = await asyncio.to_thread(
                            etl_once, tools["ethereum_etl"], url, args.blocks, work / f"etl{number}"
                        )
                    except (OSError, RuntimeError) as exc:
                        errors["ethereum_etl"] = str(exc)
                if "cryo" in tools and "cryo" not in errors:
                    try:
                        one["cryo"] = await asyncio.to_thread(
                            cryo_once, tools["cryo"], url, args.blocks, work / f"cryo{number}"
                        )
                    except (OSError, RuntimeError, ValueError) as exc:
                        errors["cryo"] = str(exc)
                for tool in ("tindexer", "ethereum_etl", "cryo"):
                    if tool in one:
                        one[tool]["transactions_per_second"] = round(
                            one[tool]["blocks_per_second"] * transactions / args.blocks, 1
                        )
                one["raw"]["transactions_per_second"] = round(raw * transactions / args.blocks, 1)
                rounds.append(one)
                print(f"  round {number + 1}: " + ", ".join(
                    f"{tool} {one[tool]['transactions_per_second']:,.0f} tx/s"
                    for tool in ("raw", "tindexer", "ethereum_etl", "cryo") if tool in one
                ) + (f"; errors {list(errors)}" if errors else ""), flush=True)  # fmt: skip
            if not args.no_profile and not pyspy_binary().exists():
                print(f"no py-spy at {pyspy_binary()} (set $PY_SPY): no diagnostic run")
            elif not args.no_profile:
                print("diagnostic run (py-spy on the worker) …", flush=True)
                with Diagnosis(work) as spy:
                    profiled = await index_once(url, node, anvil.pid)
                diagnosis = {
                    "run": profiled,
                    "worker_phase_seconds": spy.phases(),
                    "worker_hot_frames": spy.hot_frames(),
                }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median_of(tool: str, key: str) -> float | None:
        values = [r[tool][key] for r in rounds if tool in r]
        return statistics.median(values) if values else None

    raw_tps = median_of("raw", "transactions_per_second") or 0.0
    names = {
        "raw": "raw fetch ceiling (blocks + receipts, unparsed)",
        "tindexer": "tindexer end to end, every dataset",
        "ethereum_etl": f"ethereum-etl {ETL_VERSION} (blocks+txs, receipts+logs)",
        "cryo": "cryo (blocks, transactions, logs)",
    }
    table = []
    for tool, label in names.items():
        tps = median_of(tool, "transactions_per_second")
        if tps is None:
            continue
        table.append(
            {
                "pipeline": label,
                "transactions_per_second": tps,
                "blocks_per_second": median_of(tool, "blocks_per_second"),
                "fraction_of_raw": round(tps / raw_tps, 3) if raw_tps else 0.0,
                "runs_transactions_per_second": [
                    r[tool]["transactions_per_second"] for r in rounds if tool in r
                ],
            }
        )

    def ratio(a: str, b: str) -> float | None:
        values = [
            r[a]["transactions_per_second"] / r[b]["transactions_per_second"]
            for r in rounds
            if a in r and b in r
        ]
        return round(statistics.median(values), 3) if values else None

    phases = [r["tindexer"]["phase_seconds"] for r in rounds]
    phase_median = {
        phase: round(statistics.median(p.get(phase, 0.0) for p in phases), 3)
        for phase in sorted({k for p in phases for k in p})
    }
    notes = [
        f"Same-round ratios (medians): tindexer / ethereum-etl "
        f"**{ratio('tindexer', 'ethereum_etl')}**, tindexer / cryo **{ratio('tindexer', 'cryo')}**"
        f", tindexer / raw ceiling {ratio('tindexer', 'raw')}.",
        f"tindexer's times exclude service start-up (from HeadScan start to the last block "
        f"stored); ethereum-etl's and cryo's are their whole commands ({errors or 'no errors'}).",
    ]
    result.update(
        {
            "anvil_version": version.splitlines()[0] if version else None,
            "blocks": args.blocks,
            "transactions": transactions,
            "logs": node["logs"],
            "failed_transactions": node["failed_transactions"],
            "workload": args.workload,
            "contracts": addresses,
            "seed_seconds": round(seed_seconds, 1),
            "rounds_run": len(rounds),
            "table": table,
            "tindexer_over_ethereum_etl": ratio("tindexer", "ethereum_etl"),
            "tindexer_over_cryo": ratio("tindexer", "cryo"),
            "tindexer_over_raw": ratio("tindexer", "raw"),
            "indexer_phase_seconds": phase_median,
            "indexer_hot_frames": (diagnosis or {})
            .get("worker_hot_frames", {})
            .get("inclusive_ours"),
            "notes": notes,
            "errors": errors,
            "tools": {k: str(v) for k, v in tools.items()},
            "rounds": rounds,
            "diagnosis": diagnosis,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
    )
    path = write_result(args.name, result)
    for row in table:
        print(f"  {row['pipeline']:55} {row['transactions_per_second']:>10,.0f} tx/s "
              f"({row['fraction_of_raw']:.0%} of raw)")  # fmt: skip
    print("  " + " ".join(notes))
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
