"""A real Prometheus on the cluster's core host, scraping other hosts across the bridge.

It runs in the core host's namespace and reaches every target by its host's address, as a
Prometheus on a machine of its own would; the test process queries it through the bridge. It
scrapes and evaluates every second, with the rules the test hands it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from indexer.embedded import child_process
from tests.support.cluster import Host
from tests.support.waiting import wait_until

PROMETHEUS_PORT = 9090


def prometheus_config(rules: Path, jobs: dict[str, Sequence[str]]) -> str:
    """Scrape and evaluate every second; one static job per name, its `host:port` targets."""
    lines = [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "  evaluation_interval: 1s",
        f"rule_files: ['{rules}']",
        "scrape_configs:",
    ]
    for job, targets in jobs.items():
        listed = ", ".join(f"'{target}'" for target in targets)
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: [{listed}]"]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def prometheus_on(
    host: Host, address: str, config: str, work_dir: Path
) -> AsyncIterator[str]:
    """Prometheus on `host`, listening on `address`, once ready; its base URL. Stopped when
    the block ends."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: run `make install` (Debian's prometheus package)"
    config_file = work_dir / "prometheus.yml"
    config_file.write_text(config)
    args = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={work_dir / 'tsdb'}",
        f"--web.listen-address={address}:{PROMETHEUS_PORT}",
    ]
    log = work_dir / "prometheus.log"
    base = f"http://{address}:{PROMETHEUS_PORT}"

    async def ready() -> bool:  # it listens before its storage is open, answering 503
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"{base}/-/ready") as response,
        ):
            return response.status == 200

    with child_process(host.command(args), address, PROMETHEUS_PORT, log_path=log):
        await wait_until(ready, 30, "Prometheus to be ready", retry_on=(aiohttp.ClientError,))
        yield base


async def instant_query(base: str, promql: str) -> list[dict[str, Any]]:
    """The samples of an instant query, each {"metric": labels, "value": [time, text]}."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{base}/api/v1/query", params={"query": promql}) as response,
    ):
        body = await response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def firing(base: str, alertname: str) -> list[dict[str, str]]:
    """The labels of each firing `alertname` alert."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{base}/api/v1/alerts") as response,
    ):
        body = await response.json()
    return [
        alert["labels"]
        for alert in body["data"]["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"
    ]
