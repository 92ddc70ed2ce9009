"""A real Prometheus scrapes /metrics and answers PromQL; promtool accepts the exposition."""

from __future__ import annotations

import asyncio
import shutil
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Callable
from pathlib import Path

import aiohttp

from indexer.embedded import child_process, free_port
from indexer.worker import running_worker
from tests.support.harness import ObservedIndexer, fully_indexed
from tests.support.waiting import wait_until


def prometheus_config(target: str) -> str:
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: tindexer\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )


async def instant_query(base: str, promql: str) -> list[dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/api/v1/query", params={"query": promql}) as response,
    ):
        body = await response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


async def test_real_prometheus_scrapes_and_answers_promql(
    observed_indexer: ObservedIndexer, sim_chain: Callable[..., str], tmp_path: Path
) -> None:
    harness = observed_indexer.harness
    url = sim_chain(backlog=500, txs_per_block=2)
    row = await harness.add_chain(url, blocks_per_workflow=50)
    chain = row.config.name
    async with running_worker(
        observed_indexer.client, harness.pool, harness.task_queue, metrics=observed_indexer.metrics
    ):
        await harness.start(chain)
        await wait_until(lambda: fully_indexed(harness, chain, 499), 60, "backfill")

    # promtool lints the exposition exactly as our endpoint serves it.
    async with aiohttp.ClientSession() as session, session.get(observed_indexer.url) as response:
        exposition = await response.text()
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (Debian package prometheus; `make install`)"
    check = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await check.communicate(exposition.encode())
    assert check.returncode == 0, output.decode()

    target = observed_indexer.url.removeprefix("http://").removesuffix("/metrics")
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(target))
    port = free_port()
    args = [
        shutil.which("prometheus") or "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    base = f"http://127.0.0.1:{port}"
    with child_process(args, "127.0.0.1", port, log_path=tmp_path / "prometheus.log"):
        query = f'tindexer_blocks_indexed_total{{chain="{chain}"}}'

        async def ready() -> bool:
            async with aiohttp.ClientSession() as session, session.get(f"{base}/-/ready") as r:
                return r.status == 200

        await wait_until(ready, 30, "Prometheus to be ready", interval=0.2)

        async def scraped() -> bool:
            return bool(await instant_query(base, query))

        await wait_until(scraped, 30, "Prometheus to scrape the indexer", interval=0.5)
        result = await instant_query(base, query)
        assert float(result[0]["value"][1]) == 500
        up = await instant_query(base, 'up{job="tindexer"}')
        assert float(up[0]["value"][1]) == 1
        live = await instant_query(base, f'tindexer_chain_live_sync{{chain="{chain}"}}')
        assert live and float(live[0]["value"][1]) in (0.0, 1.0)
