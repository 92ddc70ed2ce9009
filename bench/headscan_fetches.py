"""HeadScan's header fetches per minute on anvil: idle, and mining a block a second.

HeadScan's loop (scan_head, index the gaps it returns, sleep head_poll_interval_seconds = 1 s)
runs through temporalio.testing.ActivityEnvironment against a real anvil and a real PostgreSQL
(pgserver), with the code of `--code` (a checkout: main for "before", a branch for "after"), so
the same script measures both. A counting proxy between the indexer and anvil counts every
JSON-RPC call: header-only eth_getBlockByNumber (hash checks and the head: what HeadScan
fetches), tagged ones ("finalized", "safe"), full blocks (index_range) and eth_blockNumber.
After a backlog of `--backlog` blocks is indexed, each case counts `--seconds` of scans.

    python bench/headscan_fetches.py --code /work/main --label before --out /tmp/before.json
    python bench/headscan_fetches.py --code . --label after --finality finalized ...

With --rounds N --before DIR it drives the whole comparison: each round runs "before" (DIR's
code, default finality), "after" (this checkout, default) and "after, finalized" back to back,
and bench/results/headscan-fetches.json gets every run, the medians and the ratios per round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose indexer runs")
    parser.add_argument("--label", default="after")
    parser.add_argument("--finality", default=None, help="finalized, safe, a depth, or unset")
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("/dev/stdout"))
    parser.add_argument("--rounds", type=int, default=0, help="drive a before/after comparison")
    parser.add_argument("--before", type=Path, help="the checkout measured as 'before'")
    return parser.parse_args()


ARGS = parse()
VARIANTS = (("before", None), ("after", None), ("after", "finalized"))


def compare() -> None:
    """Rounds of before / after / after-finalized, one subprocess each; medians and ratios."""
    import statistics

    sys.path.insert(0, str(ROOT))
    from bench.common import provenance, write_result

    rounds: list[dict[str, Any]] = []
    for _ in range(ARGS.rounds):
        runs: dict[str, Any] = {}
        for label, finality in VARIANTS:
            name = label if finality is None else f"{label}-{finality}"
            code = ARGS.before if label == "before" else ROOT
            command = [sys.executable, __file__, "--code", str(code), "--label", name]
            command += ["--seconds", str(ARGS.seconds), "--backlog", str(ARGS.backlog)]
            command += ["--out", "/dev/stdout"] + (["--finality", finality] if finality else [])
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[name] = json.JSONDecoder().raw_decode(done.stdout, done.stdout.index("{"))[0]
        rounds.append(runs)
    names = list(rounds[0])
    summary: dict[str, Any] = {}
    for case in ("idle", "mining_1_block_per_second"):
        per_minute = {
            name: statistics.median(
                r[name]["cases"][case]["header_fetches_per_minute"] for r in rounds
            )
            for name in names
        }
        ratios = {
            name: statistics.median(
                r["before"]["cases"][case]["header_fetches_per_minute"]
                / max(r[name]["cases"][case]["header_fetches_per_minute"], 1e-9)
                for r in rounds
            )
            for name in names
            if name != "before"
        }
        summary[case] = {
            "header_fetches_per_minute_median": per_minute,
            "before_over_after_median_ratio": {k: round(v, 1) for k, v in ratios.items()},
        }
    import os

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    result = {
        **provenance(" ".join(["python", "bench/headscan_fetches.py", *sys.argv[1:]])),
        "ram_gib": round(memory / 2**30, 1),
        "before_commit": rounds[0]["before"]["commit"],
        "what": "HeadScan's header fetches (header-only and tagged eth_getBlockByNumber calls,"
        " counted by a proxy) per minute on anvil, head_poll_interval_seconds = 1, after a"
        f" {ARGS.backlog}-block backlog is indexed; idle, then mining a block a second",
        "summary": summary,
        "rounds": rounds,
    }
    print(write_result("headscan-fetches", result))
    print(json.dumps(summary, indent=2))


if ARGS.rounds:
    compare()
    sys.exit(0)
sys.path.insert(0, str(ARGS.code.resolve()))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from temporalio.testing import ActivityEnvironment  # noqa: E402

from exporter.metrics import Metrics  # noqa: E402
from indexer.activities.chain_cache import ChainCache  # noqa: E402
from indexer.activities.index_range import IndexRangeActivities  # noqa: E402
from indexer.activities.scan_head import ScanHeadActivities  # noqa: E402
from indexer.config import ChainConfig  # noqa: E402
from indexer.embedded import embedded_postgres  # noqa: E402
from indexer.store.chains import upsert_chain  # noqa: E402
from indexer.store.db import create_pool  # noqa: E402
from indexer.workflows.inputs import IndexRangeInput, ScanHeadInput  # noqa: E402

ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


class CountingProxy:
    """Forwards JSON-RPC to anvil; counts calls by kind."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.calls: Counter[str] = Counter()
        self.session: aiohttp.ClientSession | None = None

    @staticmethod
    def kind(call: dict[str, Any]) -> str:
        method = str(call.get("method"))
        if method != "eth_getBlockByNumber":
            return method
        number, full = call["params"][0], call["params"][1]
        if not number.startswith("0x"):
            return f"tag:{number}"
        return "full_block" if full else "header"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = json.loads(body)
        for call in payload if isinstance(payload, list) else [payload]:
            self.calls[self.kind(call)] += 1
        assert self.session is not None
        async with self.session.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), content_type="application/json"
            )


async def rpc(url: str, method: str, *params: Any) -> Any:
    async with aiohttp.ClientSession() as http:
        request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with http.post(url, json=request) as response:
            return (await response.json())["result"]


@dataclass
class Activities:
    scans: ScanHeadActivities
    ranges: IndexRangeActivities


async def scan_loop(activities: Activities, chain: str, until: float) -> int:
    """HeadScan's loop with direct indexing of every gap; the scans made."""
    env = ActivityEnvironment()
    scans = 0
    while time.monotonic() < until:
        started = time.monotonic()
        result = await env.run(activities.scans.scan_head, ScanHeadInput(chain))
        for gap in result.gaps:
            for start in range(gap.start, gap.end + 1, 200):
                end = min(gap.end, start + 199)
                await env.run(activities.ranges.index_range, IndexRangeInput(chain, start, end))
        scans += 1
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return scans


async def miner(url: str, until: float) -> None:
    while time.monotonic() < until:
        await rpc(url, "evm_mine")
        await asyncio.sleep(1.0)


async def measure(anvil: str, database: str) -> dict[str, Any]:
    proxy = CountingProxy(anvil)
    app = web.Application()
    app.router.add_post("/", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    proxy.session = aiohttp.ClientSession()
    pool = await create_pool(database)
    try:
        knobs: dict[str, Any] = {}
        if ARGS.finality is not None:
            knobs["finality"] = int(ARGS.finality) if ARGS.finality.isdigit() else ARGS.finality
        config = ChainConfig(
            name="anvil", rpc_url=f"http://127.0.0.1:{port}/", datasets=["blocks"], **knobs
        )
        await upsert_chain(pool, config)
        chains = ChainCache(pool, Metrics())
        activities = Activities(ScanHeadActivities(chains), IndexRangeActivities(chains))
        await rpc(anvil, "anvil_mine", hex(ARGS.backlog))
        await scan_loop(activities, "anvil", time.monotonic() + 5)  # backlog indexed, view built
        cases: dict[str, Any] = {}
        for case in ("idle", "mining_1_block_per_second"):
            proxy.calls.clear()
            until = time.monotonic() + ARGS.seconds
            mining = asyncio.create_task(miner(anvil, until)) if case != "idle" else None
            began = time.monotonic()
            scans = await scan_loop(activities, "anvil", until)
            minutes = (time.monotonic() - began) / 60
            if mining:
                await mining
            counts = dict(proxy.calls)
            cases[case] = {
                "scans": scans,
                "minutes": round(minutes, 3),
                "calls": counts,
                "header_fetches_per_minute": round(
                    (counts.get("header", 0) + sum(v for k, v in counts.items() if k[:4] == "tag:"))
                    / minutes,
                    1,
                ),
                "header_fetches_per_scan": round(
                    (counts.get("header", 0) + sum(v for k, v in counts.items() if k[:4] == "tag:"))
                    / scans,
                    2,
                ),
            }
        await chains.close()
        return cases
    finally:
        await pool.close()
        await proxy.session.close()
        await runner.cleanup()


def wait_for_node(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(rpc(url, "eth_blockNumber"))
            return
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        node = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_node(f"http://127.0.0.1:{port}")
            with embedded_postgres(Path(tmp) / "pg") as database:
                cases = asyncio.run(measure(f"http://127.0.0.1:{port}", database))
        finally:
            node.terminate()
            node.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    commit = subprocess.run(
        ["git", "-C", str(ARGS.code), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = {"label": ARGS.label, "commit": commit, "finality": ARGS.finality, "cases": cases}
    ARGS.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
