"""A real node, and a peer: the pipeline against anvil, beside anvil's own ceiling and ethereum-etl.

In one run, on one anvil (npm @foundry-rs/anvil) seeded here with a few thousand blocks that carry
3-7 transactions each (5 on average; the measured average is reported):
  * raw ceiling: a minimal aiohttp loop posting batched eth_getBlockByNumber(n, true) and reading
    the bytes without parsing — at the indexer's batch size and concurrency, and over a small
    sweep of both, whose best is the node's ceiling;
  * parsed ceiling: the same fetch through our Fetcher.get_blocks (JSON parsing, block checks),
    with no Temporal and no database, as bench/backlog.py measures it;
  * the indexer: `run_loadtest(rpc_url=anvil)` — Temporal dev server, PostgreSQL (a new database
    each run), a `tindexer worker` with metrics and tracing on — and every stored block hash and
    transaction hash compared with the node's after each run;
  * ethereum-etl 2.4.2 `export_blocks_and_transactions` with its defaults, from a Python 3.9
    virtualenv this script creates (and reuses) outside the repo, its output rows counted.
The sweep comes first (median of 3 passes per setting). Then `--runs` (3) rounds, each a raw pass
at the sweep's best setting, a Fetcher pass, an indexer run and an ethereum-etl run, back to
back, so every ratio is measured in one round even when the machine is shared; figures are the
medians over rounds. Each round also meters the cores anvil keeps busy (its CPU seconds over
wall seconds) serving the raw fetch and during the indexer's run, since the node shares the
machine with everything else. When the indexer misses 90 % of the raw ceiling (or with
--profile), one extra diagnostic run records a py-spy profile of the worker and its per-phase
(fetch/store) activity time from /metrics.

    .venv/bin/python bench/anvil.py             # or `make bench-anvil`
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import ROOT, provenance, scratch_directory, write_result
from bench.profiling import hot_frames, record

ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
ETL_VERSION = "2.4.2"
ETL_PYTHON_VERSION = "3.9.18"
ETL_VENV = Path(
    os.environ.get("TINDEXER_ETL_VENV")
    or Path.home() / ".cache" / "tindexer" / f"ethereum-etl-{ETL_VERSION}-py{ETL_PYTHON_VERSION}"
)
TARGET = 0.9
CEILING_RANGES_IN_FLIGHT = 8  # as bench/backlog.py: a worker runs several activities at once
RAW_SWEEP = [(10, 2), (50, 2), (50, 8), (200, 2), (200, 8)]  # (batch size, requests in flight)


class CpuMeter:
    """Cores a process and its children kept busy (CPU seconds / wall seconds) over a block.

    Children count: node_modules/.bin/anvil is a launcher whose child is the node itself.
    """

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.cores = 0.0

    def _cpu_seconds(self) -> float:
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in processes)

    def __enter__(self) -> CpuMeter:
        self._cpu, self._wall = self._cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        cpu = self._cpu_seconds() - self._cpu
        self.cores = round(cpu / (time.perf_counter() - self._wall), 2)


# --- JSON-RPC helpers -----------------------------------------------------------------------


async def call(http: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with http.post(url, json=request) as response:
        body = await response.json(content_type=None)
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


async def batch(http: aiohttp.ClientSession, url: str, calls: list[tuple[str, list[Any]]]) -> list:
    payload = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    async with http.post(url, json=payload) as response:
        body = await response.json(content_type=None)
    answers = sorted(body, key=lambda answer: answer["id"])
    errors = [answer["error"] for answer in answers if "error" in answer]
    if errors:
        raise RuntimeError(f"batch: {errors[0]}")
    return [answer["result"] for answer in answers]


# --- the node ---------------------------------------------------------------------------------


async def seed(url: str, blocks: int) -> float:
    """Mine blocks 1..blocks-1 carrying 3..7 transfers each (automine off, batched sends)."""
    async with aiohttp.ClientSession() as http:
        accounts = await call(http, url, "eth_accounts")
        await call(http, url, "evm_setAutomine", False)
        started = time.perf_counter()
        for number in range(1, blocks):
            sends = [
                (
                    "eth_sendTransaction",
                    [
                        {
                            "from": accounts[(number + i) % len(accounts)],
                            "to": accounts[(number + i + 1) % len(accounts)],
                            "value": hex(10**15 + i),
                        }
                    ],
                )
                for i in range(3 + number % 5)
            ]
            await batch(http, url, sends)
            await call(http, url, "evm_mine")
        seconds = time.perf_counter() - started
        head = int(await call(http, url, "eth_blockNumber"), 16)
    if head != blocks - 1:
        raise RuntimeError(f"seeded head {head}, expected {blocks - 1}")
    return seconds


async def node_contents(url: str, blocks: int) -> list[tuple[bytes, list[bytes]]]:
    """Every block's hash and transaction hashes, straight from the node (for counts and checks)."""
    contents: list[tuple[bytes, list[bytes]]] = []
    async with aiohttp.ClientSession() as http:
        for start in range(0, blocks, 100):
            numbers = range(start, min(start + 100, blocks))
            raws = await batch(
                http, url, [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
            )
            for number, raw in zip(numbers, raws, strict=True):
                assert int(raw["number"], 16) == number
                txs = [bytes.fromhex(tx["hash"][2:]) for tx in raw["transactions"]]
                contents.append((bytes.fromhex(raw["hash"][2:]), txs))
    return contents


# --- ceilings ---------------------------------------------------------------------------------


async def raw_ceiling(url: str, blocks: int, batch_size: int, in_flight: int) -> float:
    """Blocks/s of batched full-transaction fetches whose bodies are read but never parsed."""
    bodies = [
        json.dumps(
            [
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "eth_getBlockByNumber",
                    "params": [hex(n), True],
                }
                for n in range(start, min(start + batch_size, blocks))
            ]
        ).encode()
        for start in range(0, blocks, batch_size)
    ]
    todo = iter(bodies)
    received = 0
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def fetcher() -> None:
            nonlocal received
            for body in todo:
                async with http.post(url, data=body, headers=headers) as response:
                    response.raise_for_status()
                    answer = await response.read()
                    received += len(answer)

        await call(http, url, "eth_blockNumber")  # connection warm
        started = time.perf_counter()
        await asyncio.gather(*(fetcher() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
    assert received > blocks * 500, received  # full blocks came back, not errors
    return blocks / seconds


async def parsed_ceiling(url: str, blocks: int, knobs: dict[str, Any]) -> float:
    """Blocks/s of our Fetcher.get_blocks over the indexer's ranges: fetch + parse + checks."""
    from indexer.activities.chain_cache import rpc_settings
    from indexer.chain.fetcher import Fetcher
    from indexer.config import ChainConfig

    config = ChainConfig(name="ceiling", rpc_url=url, **knobs)
    client = Fetcher.for_url(url, "ceiling", rpc_settings(config))  # the indexer's own settings
    size = config.blocks_per_workflow
    starts = iter(range(0, blocks, size))
    fetched = 0

    async def fetcher() -> None:
        nonlocal fetched
        for start in starts:
            got = await client.get_blocks(start, min(start + size, blocks) - 1)
            fetched += len(got)

    await client.get_blocks(0, 0)  # connection warm
    started = time.perf_counter()
    await asyncio.gather(*(fetcher() for _ in range(CEILING_RANGES_IN_FLIGHT)))
    seconds = time.perf_counter() - started
    await client.close()
    assert fetched == blocks
    return blocks / seconds


# --- the indexer ------------------------------------------------------------------------------


async def fresh_database(admin_url: str) -> str:
    import asyncpg

    name = f"anvil_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def verify(database_url: str, contents: list[tuple[bytes, list[bytes]]]) -> dict[str, Any]:
    """Stored blocks and transactions against the node's: numbers, hashes, counts, exactly."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        chain_ids = [r["id"] for r in await conn.fetch("SELECT id FROM chains")]
        assert len(chain_ids) == 1, chain_ids
        blocks = await conn.fetch(
            "SELECT number, hash, tx_count FROM blocks WHERE chain_id = $1 ORDER BY number",
            chain_ids[0],
        )
        txs = await conn.fetch(
            "SELECT block_number, tx_index, hash FROM transactions WHERE chain_id = $1",
            chain_ids[0],
        )
    finally:
        await conn.close()
    stored_blocks = [(r["number"], bytes(r["hash"]), r["tx_count"]) for r in blocks]
    node_blocks = [(n, h, len(t)) for n, (h, t) in enumerate(contents)]
    stored_txs = {(r["block_number"], r["tx_index"]): bytes(r["hash"]) for r in txs}
    node_txs = {(n, i): tx for n, (_, t) in enumerate(contents) for i, tx in enumerate(t)}
    return {
        "blocks_stored": len(stored_blocks),
        "transactions_stored": len(stored_txs),
        "block_hashes_match": stored_blocks == node_blocks,
        "transaction_hashes_match": stored_txs == node_txs,
    }


def _worker_process(parent: int) -> Any:
    import psutil

    for child in psutil.Process(parent).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmdline = child.cmdline()
            if "indexer.cli" in cmdline and "worker" in cmdline:
                return child
    return None


class Diagnosis:
    """During one run: py-spy on the worker, and its /metrics scraped until it exits."""

    def __init__(self, work: Path) -> None:
        self.profile = work / "worker.pyspy.txt"
        self.metrics_text = ""
        self.pyspy: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Diagnosis:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.pyspy is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.pyspy.wait(30)

    def _watch(self) -> None:
        import urllib.request

        worker = None
        while worker is None and not self._stop.is_set():
            worker = _worker_process(os.getpid())
            time.sleep(0.02)
        if worker is None:
            return
        port = worker.cmdline()[worker.cmdline().index("--metrics-port") + 1]
        metrics = f"http://127.0.0.1:{port}/metrics"
        while not self.metrics_text and not self._stop.is_set():  # profile the ready worker
            with contextlib.suppress(OSError), urllib.request.urlopen(metrics, timeout=1) as r:
                self.metrics_text = r.read().decode()
            time.sleep(0.02)
        self.pyspy = record(worker.pid, self.profile)
        while not self._stop.is_set():
            with contextlib.suppress(OSError), urllib.request.urlopen(metrics, timeout=1) as r:
                self.metrics_text = r.read().decode()
            time.sleep(0.5)

    def phases(self) -> dict[str, dict[str, float]]:
        from prometheus_client.parser import text_string_to_metric_families

        out: dict[str, dict[str, float]] = collections.defaultdict(dict)
        for family in text_string_to_metric_families(self.metrics_text):
            for s in family.samples:
                if s.name.startswith("tindexer_index_range_duration_seconds_") and (
                    s.name.endswith("_sum") or s.name.endswith("_count")
                ):
                    key = "seconds" if s.name.endswith("_sum") else "activities"
                    phase = s.labels["phase"]
                    out[phase][key] = out[phase].get(key, 0.0) + s.value
                if s.name == "tindexer_activity_duration_seconds_sum":
                    activity = s.labels.get("activity", "?")
                    out[f"activity:{activity}"]["seconds"] = s.value
        return {k: {m: round(v, 3) for m, v in d.items()} for k, d in out.items()}

    def hot_frames(self, top: int = 12) -> dict[str, Any]:
        """py-spy's summary of the worker (profiling.hot_frames)."""
        return hot_frames(self.profile, top=top)


async def index_once(
    url: str,
    contents: list[tuple[bytes, list[bytes]]],
    knobs: dict[str, Any],
    poll_seconds: float,
    admin_url: str,
    work: Path,
    anvil_pid: int,
    diagnose: bool = False,
) -> dict[str, Any]:
    """One end-to-end run on fresh services and a new database, checked against the node."""
    from indexer.loadtest import run_loadtest

    transactions = sum(len(t) for _, t in contents)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url = await fresh_database(admin_url)
    try:
        with Diagnosis(work) if diagnose else contextlib.nullcontext() as spy:
            run = await run_loadtest(
                0,
                chain_knobs=knobs,
                rpc_url=url,
                poll_seconds=poll_seconds,
                log=lambda *_: None,
                watch={"anvil": anvil_pid},
            )
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
    checked = await verify(database_url, contents)
    if not (checked["block_hashes_match"] and checked["transaction_hashes_match"]):
        raise AssertionError(f"stored data differs from the node: {checked}")
    summary: dict[str, Any] = {
        "blocks": run.blocks,
        "index_seconds": run.index_seconds,
        "schedule_seconds": run.schedule_seconds,
        "first_blocks_stored_seconds": next(
            (sample["seconds"] for sample in run.series if sample["indexed"] > 0), None
        ),
        "blocks_per_second": round(run.blocks / run.index_seconds, 1),
        "transactions_per_second": round(transactions / run.index_seconds, 1),
        "failed_starts": run.failed_starts,
        "rate_limited": run.rate_limited,
        "activity_timeouts": run.activity_timeouts,
        "lost_blocks": run.lost_blocks,
        "duplicate_blocks": run.duplicate_blocks,
        "peak_rss_bytes": run.peak_rss_bytes,
        "cpu_seconds": run.cpu_seconds,
        **checked,
    }
    if isinstance(spy, Diagnosis):
        return {
            "run": summary,
            "worker_phase_seconds": spy.phases(),
            "worker_hot_frames": spy.hot_frames(),
        }
    return summary


# --- ethereum-etl -----------------------------------------------------------------------------


def etl_python() -> str:
    """Python 3.9 for ethereum-etl (it fails on 3.11): pyenv's, else one on PATH."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        prefix = subprocess.run(
            ["pyenv", "prefix", ETL_PYTHON_VERSION], capture_output=True, text=True, check=True
        ).stdout.strip()
        return str(Path(prefix) / "bin" / "python")
    candidate = Path.home() / ".pyenv" / "versions" / ETL_PYTHON_VERSION / "bin" / "python"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("python3.9")
    if found:
        return found
    raise FileNotFoundError(f"no Python {ETL_PYTHON_VERSION} (pyenv) or python3.9 on PATH")


def etl_venv() -> Path:
    """The cached virtualenv with ethereum-etl, created on first use."""
    cli = ETL_VENV / "bin" / "ethereumetl"
    if cli.exists():
        return cli
    print(f"  creating {ETL_VENV} (Python {ETL_PYTHON_VERSION}, ethereum-etl {ETL_VERSION}) …")
    shutil.rmtree(ETL_VENV, ignore_errors=True)
    ETL_VENV.parent.mkdir(parents=True, exist_ok=True)
    for args in (
        [etl_python(), "-m", "venv", str(ETL_VENV)],
        [str(ETL_VENV / "bin" / "pip"), "install", "--quiet", f"ethereum-etl=={ETL_VERSION}"],
    ):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(ETL_VENV, ignore_errors=True)
            raise RuntimeError(f"{' '.join(args)} failed: {(done.stderr or done.stdout)[-2000:]}")
    return cli


def count_rows(path: Path) -> int:
    with path.open(newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def etl_once(cli: Path, url: str, blocks: int, out: Path) -> dict[str, Any]:
    """`export_blocks_and_transactions` with its defaults, timed from outside, rows counted."""
    out.mkdir()
    command = [
        str(cli),
        "export_blocks_and_transactions",
        "--start-block", "0",
        "--end-block", str(blocks - 1),
        "--provider-uri", url,
        "--blocks-output", str(out / "blocks.csv"),
        "--transactions-output", str(out / "transactions.csv"),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr[-2000:]}")
    return {
        "seconds": round(seconds, 3),
        "blocks_per_second": round(blocks / seconds, 1),
        "rows": {
            "blocks": count_rows(out / "blocks.csv"),
            "transactions": count_rows(out / "transactions.csv"),
        },
    }


# --- main -------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=3_000, help="blocks 0..N-1 on the node")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--blocks-per-workflow", type=int)
    parser.add_argument("--rpc-batch-size", type=int)
    parser.add_argument("--rpc-max-concurrency", type=int)
    parser.add_argument(
        "--poll-seconds", type=float, default=0.25, help="progress sampling (scrapes the worker)"
    )
    parser.add_argument("--profile", action="store_true", help="always do the diagnostic run")
    parser.add_argument("--name", default="anvil", help="result file bench/results/<name>.json")
    args = parser.parse_args()
    from indexer.config import ChainConfig
    from indexer.embedded import child_process, embedded_postgres, free_port

    if not ANVIL.exists():
        raise SystemExit(f"anvil is not installed at {ANVIL}: run `make install`")
    knobs = {
        key: value
        for key, value in {
            "blocks_per_workflow": args.blocks_per_workflow,
            "rpc_batch_size": args.rpc_batch_size,
            "rpc_max_concurrency": args.rpc_max_concurrency,
        }.items()
        if value is not None
    }
    config = ChainConfig(name="anvil", rpc_url="http://127.0.0.1:1", **knobs)
    settings = {
        "blocks_per_workflow": config.blocks_per_workflow,
        "rpc_batch_size": config.rpc_batch_size,
        "rpc_max_concurrency": config.rpc_max_concurrency,
        "catchup_threshold": config.catchup_threshold,
        "max_inflight_ranges": config.max_inflight_ranges,
    }
    command = " ".join(["make bench-anvil (.venv/bin/python bench/anvil.py", *sys.argv[1:]]) + ")"
    result: dict[str, Any] = provenance(command)
    version = subprocess.check_output([str(ANVIL), "--version"], text=True)  # noqa: ASYNC221
    work = scratch_directory("tindexer-anvil-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    anvil_args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    try:
        with child_process(
            anvil_args, "127.0.0.1", port, log_path=work / "anvil.log"
        ) as anvil_process:
            print(f"seeding anvil with {args.blocks:,} blocks …", flush=True)
            seed_seconds = await seed(url, args.blocks)
            contents = await node_contents(url, args.blocks)
            transactions = sum(len(t) for _, t in contents)
            avg = transactions / args.blocks
            print(f"  {transactions:,} transactions, {avg:.2f} per block, in {seed_seconds:.1f} s")

            print(f"raw ceiling (median of {args.runs}) …", flush=True)
            sweep = []
            for size, in_flight in sorted(
                {*RAW_SWEEP, (config.rpc_batch_size, config.rpc_max_concurrency)}
            ):
                rates = [
                    await raw_ceiling(url, args.blocks, size, in_flight) for _ in range(args.runs)
                ]
                sweep.append({"batch_size": size, "in_flight": in_flight,
                              "blocks_per_second": round(statistics.median(rates), 1)})  # fmt: skip
                print(f"  batch {size:>4}, {in_flight} in flight: {statistics.median(rates):,.0f}")
            at_settings = next(
                s["blocks_per_second"]
                for s in sweep
                if (s["batch_size"], s["in_flight"])
                == (config.rpc_batch_size, config.rpc_max_concurrency)
            )
            best = max(sweep, key=lambda s: s["blocks_per_second"])
            paired = (int(best["batch_size"]), int(best["in_flight"]))
            round_settings = sorted({paired, (config.rpc_batch_size, config.rpc_max_concurrency)})

            etl_error = None
            try:
                cli: Path | None = etl_venv()
            except (OSError, RuntimeError) as exc:
                cli, etl_error = None, str(exc)
                print(f"  ethereum-etl could not be installed: {exc}")

            print(
                f"{args.runs} rounds, each: raw passes {round_settings} (batch, in flight), "
                f"Fetcher pass, indexer through Temporal into PostgreSQL {settings}, "
                f"ethereum-etl {ETL_VERSION} …",
                flush=True,
            )
            rounds: list[dict[str, Any]] = []
            with contextlib.ExitStack() as stack:
                admin_url = os.environ.get("DATABASE_URL") or stack.enter_context(
                    embedded_postgres(work / "pg")
                )
                for number in range(args.runs):
                    # How many cores anvil itself keeps busy serving the raw fetch, and how
                    # many it gets while the indexer's processes share the machine with it.
                    with CpuMeter(anvil_process.pid) as anvil_raw:
                        raw_rates = [
                            await raw_ceiling(url, args.blocks, *s) for s in round_settings
                        ]
                    parsed_rate = await parsed_ceiling(url, args.blocks, knobs)
                    indexed = await index_once(
                        url, contents, knobs, args.poll_seconds, admin_url, work, anvil_process.pid
                    )
                    one: dict[str, Any] = {
                        # the stricter ceiling: the better of two settings, this round
                        "raw_blocks_per_second": round(max(raw_rates), 1),
                        "parsed_blocks_per_second": round(parsed_rate, 1),
                        "indexer": indexed,
                        "anvil_cores_busy": {
                            "raw_fetch": anvil_raw.cores,
                            "indexer_run": round(
                                indexed["cpu_seconds"]["anvil"] / indexed["index_seconds"], 2
                            ),
                        },
                    }
                    if cli is not None and etl_error is None:
                        try:
                            one["ethereum_etl"] = await asyncio.to_thread(
                                etl_once, cli, url, args.blocks, work / f"etl{number}"
                            )
                        except (OSError, RuntimeError) as exc:
                            etl_error = str(exc)
                            print(f"  ethereum-etl failed: {exc}")
                    raw_now = one["raw_blocks_per_second"]
                    one["indexer_fraction_of_raw"] = round(
                        one["indexer"]["blocks_per_second"] / raw_now, 3
                    )
                    if "ethereum_etl" in one:
                        one["etl_fraction_of_raw"] = round(
                            one["ethereum_etl"]["blocks_per_second"] / raw_now, 3
                        )
                    rounds.append(one)
                    etl_note = (
                        f"ethereum-etl {one['ethereum_etl']['blocks_per_second']:,.0f} "
                        f"({one['ethereum_etl']['rows']['blocks']:,} + "
                        f"{one['ethereum_etl']['rows']['transactions']:,} rows)"
                        if "ethereum_etl" in one
                        else "ethereum-etl —"
                    )
                    print(
                        f"  round {number + 1}: raw {raw_now:,.0f}, parsed "
                        f"{one['parsed_blocks_per_second']:,.0f}, indexer "
                        f"{one['indexer']['blocks_per_second']:,.0f} blocks/s "
                        f"({one['indexer']['index_seconds']:.2f} s, "
                        f"{one['indexer']['blocks_stored']:,} blocks and "
                        f"{one['indexer']['transactions_stored']:,} txs match the node), "
                        f"{etl_note} blocks/s",
                        flush=True,
                    )
                fraction = statistics.median(r["indexer_fraction_of_raw"] for r in rounds)
                diagnosis = None
                if fraction < TARGET or args.profile:
                    print("diagnostic run (py-spy on the worker, /metrics phases) …", flush=True)
                    diagnosis = await index_once(
                        url,
                        contents,
                        knobs,
                        args.poll_seconds,
                        admin_url,
                        work,
                        anvil_process.pid,
                        diagnose=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median(values: list[Any]) -> Any:
        return statistics.median(values) if values else None

    etl_runs = [r["ethereum_etl"] for r in rounds if "ethereum_etl" in r]
    raw = median([r["raw_blocks_per_second"] for r in rounds])
    parsed = median([r["parsed_blocks_per_second"] for r in rounds])
    indexer_bps = median([r["indexer"]["blocks_per_second"] for r in rounds])
    indexer_tps = median([r["indexer"]["transactions_per_second"] for r in rounds])
    etl_bps = median([e["blocks_per_second"] for e in etl_runs])
    result.update(
        {
            "anvil_version": version.splitlines()[0] if version else None,
            "blocks": args.blocks,
            "transactions": transactions,
            "avg_txs_per_block": round(avg, 3),
            "seed_seconds": round(seed_seconds, 2),
            "settings": settings,
            "poll_seconds": args.poll_seconds,
            "raw_sweep": sweep,
            "raw_ceiling_settings": [
                {"batch_size": size, "in_flight": n} for size, n in round_settings
            ],
            "raw_ceiling_blocks_per_second": raw,
            "raw_at_indexer_settings_blocks_per_second": at_settings,
            "parsed_ceiling_blocks_per_second": parsed,
            "indexer_blocks_per_second": indexer_bps,
            "indexer_transactions_per_second": indexer_tps,
            "indexer_index_seconds": median([r["indexer"]["index_seconds"] for r in rounds]),
            "indexer_fraction_of_raw_ceiling": fraction,
            "indexer_fraction_of_parsed_ceiling": median(
                [r["indexer"]["blocks_per_second"] / r["parsed_blocks_per_second"] for r in rounds]
            ),
            "target_fraction": TARGET,
            "meets_target": fraction >= TARGET,
            "ethereum_etl_blocks_per_second": etl_bps,
            "ethereum_etl_fraction_of_raw_ceiling": median(
                [r["etl_fraction_of_raw"] for r in rounds if "etl_fraction_of_raw" in r]
            ),
            "ethereum_etl": {
                "version": ETL_VERSION,
                "python": ETL_PYTHON_VERSION,
                "venv": str(ETL_VENV),
                "options": "defaults (batch size 100, max workers 5), CSV to files",
                "rows": etl_runs[-1]["rows"] if etl_runs else None,
                "error": etl_error,
            },
            "anvil_cores_busy": {
                phase: median([r["anvil_cores_busy"][phase] for r in rounds])
                for phase in ("raw_fetch", "indexer_run")
            },
            "rounds": rounds,
            "diagnosis": diagnosis,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
    )
    cpus = result["machine"]["cpus"] or 1
    result["machine_contended"] = (
        max(result["machine"]["load_average_at_start"][0], result["load_average_at_end"][0]) > cpus
    )
    rows = [
        ("anvil raw fetch, no parsing", raw, raw * avg,
         f"best of {round_settings} (batch, in flight) each round"),
        ("anvil raw at indexer settings", at_settings, at_settings * avg,
         f"{config.rpc_batch_size}/batch, {config.rpc_max_concurrency} in flight (sweep)"),
        ("Fetcher fetch+parse", parsed, parsed * avg, "no Temporal, no database"),
        ("indexer end to end", indexer_bps, indexer_tps,
         f"{fraction:.0%} of raw, same rounds (target {TARGET:.0%})"),
        ("ethereum-etl 2.4.2 defaults", etl_bps, etl_bps * avg if etl_bps else None,
         f"failed: {etl_error[:60]}" if etl_error else "CSV export"),
    ]  # fmt: skip
    path = write_result(args.name, result)
    print(f"\n{args.blocks:,} anvil blocks, {avg:.2f} tx/block, median of {args.runs} rounds")
    print(f"{'':32} {'blocks/s':>9} {'tx/s':>9}  note")
    for name, blocks_per_second, tx_per_second, note in rows:
        b = f"{blocks_per_second:,.0f}" if blocks_per_second else "—"
        t = f"{tx_per_second:,.0f}" if tx_per_second else "—"
        print(f"{name:32} {b:>9} {t:>9}  {note}")
    print(f"load average {result['machine']['load_average_at_start']} at start, "
          f"{result['load_average_at_end']} at end; wrote {path}")  # fmt: skip
    if result["machine_contended"]:
        print(f"WARNING: load average above {cpus} CPUs: other work shared the machine, so the "
              "ceilings and ratios are noisy (compare the rounds)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
