"""The doctor unit tests' fixtures, from real parts: `python -m tests.support.doctor_capture`.

Starts the shipped Temporal dev server with a low namespace RPS and its metrics port, scrapes
it three times: at start, after a quiet window, and after a window in which a client bursts
workflow starts. Writes each page, cut to the families the doctor reads plus a few it must
ignore, and the measured windows to tests/unit/data/doctor/. The numbers are the server's own.
(The indexer's side is built in the tests with a real registry: the SDK reports no failure for
the refusals it retries, so a plain client's page holds nothing to judge.)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.service import RPCError

from indexer.embedded import child_process, free_port, temporal_dev_server_args

DATA = Path(__file__).resolve().parents[1] / "unit" / "data" / "doctor"
NAMESPACE_RPS = 5
BURST_SECONDS = 5.0
KEPT_PREFIXES = (
    "service_errors",  # service_errors_resource_exhausted, and others the doctor ignores
    "service_requests",
    "temporal_long_request",  # the server's own system workers' SDK, which the doctor ignores
)


def keep(text: str) -> str:
    """Only the lines (and # HELP/# TYPE) of families starting with KEPT_PREFIXES."""
    lines = []
    for line in text.splitlines():
        name = line.split(" ")[2] if line.startswith("# ") else line.split("{")[0].split(" ")[0]
        if name.startswith(KEPT_PREFIXES):
            lines.append(line)
    return "\n".join(lines) + "\n"


async def page(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        return await response.text()


async def burst(client: Client, seconds: float) -> int:
    """Start workflows from 32 tasks for `seconds` (nothing runs them); how many were started."""
    deadline = time.monotonic() + seconds
    started = 0

    async def starter() -> None:
        nonlocal started
        while time.monotonic() < deadline:
            try:
                await client.start_workflow(
                    "Nothing", id=f"burst-{uuid.uuid4().hex}", task_queue="nobody"
                )
                started += 1
            except RPCError:
                pass

    await asyncio.gather(*(starter() for _ in range(32)))
    return started


async def capture() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    port, metrics_port = free_port(), free_port()
    args = temporal_dev_server_args(
        port,
        dynamic_config={
            "frontend.namespaceRPS": str(NAMESPACE_RPS),
            "frontend.namespaceBurstRatio": "1",
        },
    )
    args += ["--metrics-port", str(metrics_port)]
    server_url = f"http://127.0.0.1:{metrics_port}/metrics"
    with child_process(args, "127.0.0.1", port):
        client = await Client.connect(f"127.0.0.1:{port}")
        windows = {}
        async with aiohttp.ClientSession() as session:

            async def both(label: str) -> float:
                (DATA / f"temporal-{label}.txt").write_text(keep(await page(session, server_url)))
                return time.monotonic()

            quiet_start = await both("quiet-1")
            await asyncio.sleep(BURST_SECONDS)
            burst_start = await both("quiet-2")
            windows["quiet"] = burst_start - quiet_start
            started = await burst(client, BURST_SECONDS)
            windows["burst"] = await both("burst") - burst_start
        (DATA / "windows.json").write_text(
            json.dumps({"windows_seconds": windows, "started": started}, indent=2) + "\n"
        )
        print(json.dumps(windows), started)


if __name__ == "__main__":
    asyncio.run(capture())
