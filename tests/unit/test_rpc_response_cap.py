"""Answers are read up to rpc_max_response_bytes, decoded: a batch over it is halved until it
fits, a single block over it is bad data, and a gzip bomb never gets into the worker's memory."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.support.provider_proxy import gzip_bomb
from tests.support.proxied_chain import Provider

ROOT = Path(__file__).resolve().parents[2]
BOMB_BYTES = 200 * 1024 * 1024  # what ~200 KiB of gzip decodes to
CAP_BYTES = 8 * 1024 * 1024
HEADROOM_KIB = 64 * 1024  # far below the bomb: the cap, aiohttp's buffers, and slack

# A real client in a fresh process, so its memory is its own. Its peak RSS (VmHWM) is reset
# after imports (Linux: clear_refs 5), so the peak measured is the fetch's, not the imports'.
FETCH_IN_A_CHILD = """
import asyncio, json, re, sys
from prometheus_client import CollectorRegistry
from exporter.metrics import Metrics
from indexer.chain.fetcher import Fetcher
from indexer.chain.sender import RpcSettings

def kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\\s+(\\d+)", status.read()).group(1))

async def fetch(url, cap):
    metrics = Metrics(CollectorRegistry())
    settings = RpcSettings(
        batch_size=4, max_retries=1, timeout_seconds=60, backoff_base_seconds=0.01,
        backoff_max_seconds=0.02, max_response_bytes=cap,
    )
    client = Fetcher.for_url(url, "t", settings, metrics)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    baseline, error = kib("VmRSS"), None
    try:
        await client.get_blocks(1, 3)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        await client.close()
    labels = {"chain": "t", "provider": "default", "method": "eth_getBlockByNumber"}
    labels["outcome"] = "too_large"
    too_large = metrics.registry.get_sample_value("tindexer_rpc_requests_total", labels)
    report = {"baseline_kib": baseline, "peak_kib": kib("VmHWM"), "error": error}
    print(json.dumps({**report, "too_large": too_large}))

asyncio.run(fetch(sys.argv[1], int(sys.argv[2])))
"""


async def test_a_gzip_bomb_stops_at_the_cap_and_the_worker_stays_small(
    provider: Provider,
) -> None:
    provider.proxy.answer = gzip_bomb(BOMB_BYTES)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FETCH_IN_A_CHILD,
        provider.url,
        str(CAP_BYTES),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    report = json.loads(out.decode().splitlines()[-1])
    error = report["error"] or ""
    assert error.startswith("BadChainData") and "rpc_max_response_bytes" in error, error
    assert report["too_large"] == 4  # blocks 0-3, then 0-1, then 0 twice: the first half fails
    grown = report["peak_kib"] - report["baseline_kib"]
    assert grown < HEADROOM_KIB, f"the fetch grew the process by {grown // 1024} MiB"


async def test_a_batch_over_the_cap_is_halved_until_its_halves_fit(provider: Provider) -> None:
    sizes = [len(provider.sim.block_text(n, True) or "") for n in range(6)]
    cap = 2 * max(sizes) + 200  # two blocks and their envelopes fit, three do not
    assert 3 * min(sizes) > cap
    client = provider.client(batch_size=5, max_response_bytes=cap)
    blocks = await client.get_blocks(1, 5)  # 0-4 and 5; 0-4 becomes 0-1 and 2-4, then 2 and 3-4
    assert [(b.number, b.hash) for b in blocks] == [
        (n, provider.sim.block_hash(n)[2:]) for n in range(1, 6)
    ]
    assert provider.count("too_large") == 2
    assert provider.count("ok") == 4
