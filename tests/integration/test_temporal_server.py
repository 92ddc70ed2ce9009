"""Issue 23 on real parts: a Temporal server that throttles, seen from its own metrics.

A dev server whose namespace accepts only NAMESPACE_RPS requests per second, a real Prometheus
scraping that server's /metrics with the rules of alerts/ (short `for`s), and the indexer
scheduling a backlog against it. The server names the refusals itself
(`service_errors_resource_exhausted` with the RPS cause), the new alert fires on them, the
Temporal-server dashboard's RESOURCE_EXHAUSTED panel shows them, and every block is still
stored exactly: refused starts are retried, none lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from alerts.build import render_rules
from alerts.config import CONFIG
from dashboards.build import render
from dashboards.common import concrete
from dashboards.queries.temporal_server import RPS_LIMIT_CAUSE
from exporter.metrics import Metrics
from exporter.temporal_sdk import SdkMetrics
from indexer.embedded import child_process, free_port, temporal_dev_server_args
from indexer.temporal_client import connect_temporal
from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness, fully_indexed
from tests.support.temporal_server import TemporalServer, server_samples
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
NAMESPACE_RPS = 30  # the workers' polls fit; the start bursts (parallelism 64) do not
BACKLOG = 400
BLOCKS_PER_WORKFLOW = 5  # 80 IndexRange starts
STARTS = "StartWorkflowExecution"

# Production rules except what must happen within seconds here; the committed durations are
# checked by the promtool cases in alerts/tests/temporal_server.yml.
TEST_CONFIG = dataclasses.replace(
    CONFIG, temporal_starts_rejected_for="1s", temporal_starts_rejected_window="1m"
)


@pytest.fixture(scope="module")
def limited_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """A dev server whose namespace accepts NAMESPACE_RPS requests per second, burst included."""
    port, metrics_port = free_port(), free_port()
    args = temporal_dev_server_args(
        port,
        dynamic_config={
            "frontend.namespaceRPS": str(NAMESPACE_RPS),
            "frontend.namespaceBurstRatio": "1",
        },
        metrics_port=metrics_port,
    )
    log = tmp_path_factory.mktemp("limited") / "temporal.log"
    with child_process(args, HOST, port, log_path=log):
        yield TemporalServer(f"{HOST}:{port}", f"http://{HOST}:{metrics_port}/metrics")


@pytest.fixture
def prometheus(tmp_path: Path, limited_temporal: TemporalServer) -> Iterator[str]:
    """A real Prometheus scraping the limited server every second, with the alert rules."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: run `make install` (Debian's prometheus package)"
    rules = tmp_path / "rules.yml"
    rules.write_text(render_rules(TEST_CONFIG))
    config = tmp_path / "prometheus.yml"
    target = urlsplit(limited_temporal.metrics_url).netloc
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules}\n"
        "scrape_configs:\n"
        "  - job_name: temporal\n"  # deploy/prometheus.yml's name: the rules select it
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address={HOST}:{port}",
    ]
    with child_process(args, HOST, port, log_path=tmp_path / "prometheus.log"):
        yield f"http://{HOST}:{port}"


async def get_json(url: str, **params: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def promql(prometheus: str, expr: str) -> list[dict[str, Any]]:
    body = await get_json(f"{prometheus}/api/v1/query", query=expr)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def firing(prometheus: str, alertname: str) -> list[dict[str, str]]:
    body = await get_json(f"{prometheus}/api/v1/alerts")
    return [
        a["labels"]
        for a in body["data"]["alerts"]
        if a["labels"]["alertname"] == alertname and a["state"] == "firing"
    ]


async def rps_refused_starts(server: TemporalServer) -> float:
    """StartWorkflowExecution calls the server refused for its RPS limit, as it counts them."""
    return sum(
        value
        for labels, value in await server_samples(
            server.metrics_url, "service_errors_resource_exhausted"
        )
        if labels["operation"] == STARTS
        and re.fullmatch(RPS_LIMIT_CAUSE, labels["resource_exhausted_cause"])
    )


def panel_expr(dashboard: str, title: str) -> str:
    (panel,) = [p for p in render(dashboard)["panels"] if p["title"] == title]
    (target,) = panel["targets"]
    return str(target["expr"])


async def test_a_throttling_frontend_is_named_by_its_own_metrics_and_nothing_is_lost(
    harness: Harness,
    limited_temporal: TemporalServer,
    prometheus: str,
    sim_chain: Callable[..., str],
) -> None:
    assert await rps_refused_starts(limited_temporal) == 0  # a fresh server has refused nothing
    sdk = SdkMetrics(Metrics(CollectorRegistry()))
    harness.client = await connect_temporal(limited_temporal.address, runtime=sdk.runtime)
    url = sim_chain(backlog=BACKLOG, txs_per_block=1)
    row = await harness.add_chain(
        url,
        blocks_per_workflow=BLOCKS_PER_WORKFLOW,
        catchup_threshold=0,  # the whole backlog through the Scheduler's start bursts
        parallelism=64,
        scheduler_batch_size=80,
        max_inflight_ranges=1_000,
    )
    chain = row.config.name

    async with harness.worker():
        await harness.start(chain)

        # The server itself counts the refused starts, with the RPS cause ...
        async def refused() -> bool:
            return await rps_refused_starts(limited_temporal) > 0

        async def what_the_server_saw() -> str:
            requests = await server_samples(limited_temporal.metrics_url, "service_requests")
            refusals = await server_samples(
                limited_temporal.metrics_url, "service_errors_resource_exhausted"
            )
            starts = [(k["service_name"], v) for k, v in requests if k["operation"] == STARTS]
            return f"starts {starts}; refusals {[(k['operation'], v) for k, v in refusals]}"

        await wait_until(
            refused,
            120,
            "the server to refuse starts for its RPS limit",
            diagnose=what_the_server_saw,
        )

        # ... and the alert fires on a real Prometheus scraping it, naming cause and scope.
        async def alert_fires() -> bool:
            return bool(await firing(prometheus, "TindexerTemporalStartsRejected"))

        await wait_until(alert_fires, 120, "TindexerTemporalStartsRejected to fire", interval=0.5)
        alerts = await firing(prometheus, "TindexerTemporalStartsRejected")
        assert {
            (a["operation"], a["resource_exhausted_cause"], a["resource_exhausted_scope"])
            for a in alerts
        } == {(STARTS, "RpsLimit", "Namespace")}
        assert {a["namespace"] for a in alerts} == {"default"}
        assert {a["severity"] for a in alerts} == {"warning"}

        # The Temporal-server dashboard's RESOURCE_EXHAUSTED panel returns that series.
        values = {"__rate_interval": "1m", "namespace": "default"}
        shown = await promql(
            prometheus,
            concrete(
                panel_expr("temporal_server", "RESOURCE_EXHAUSTED by cause and scope"), values
            ),
        )
        assert (
            "frontend",
            STARTS,
            "RpsLimit",
            "Namespace",
        ) in {
            (
                s["metric"]["service_name"],
                s["metric"]["operation"],
                s["metric"]["resource_exhausted_cause"],
                s["metric"]["resource_exhausted_scope"],
            )
            for s in shown
        }
        starts_panel = await promql(
            prometheus,
            concrete(
                panel_expr("temporal_server", "Workflow starts refused for the RPS limit"), values
            ),
        )
        assert {
            (s["metric"]["operation"], s["metric"]["resource_exhausted_scope"])
            for s in starts_panel
        } >= {(STARTS, "Namespace")}

        # `tindexer doctor --json`, run as a user runs it while the server refuses starts,
        # names the frontend and the cause.
        command = [sys.executable, "-m", "indexer.cli", "doctor", "--json", "--window", "5"]
        doctor = await asyncio.to_thread(
            subprocess.run,
            [*command, "--temporal-metrics-url", limited_temporal.metrics_url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert doctor.returncode == 0, doctor.stderr
        verdicts = {v["component"]: v for v in json.loads(doctor.stdout)["verdicts"]}
        frontend = verdicts["temporal-frontend"]
        assert frontend["metric"] == "service_errors_resource_exhausted"
        assert (frontend["evidence"]["cause"], frontend["evidence"]["scope"]) == (
            "RpsLimit",
            "Namespace",
        )
        # Which calls fall in its 5 s window varies (starts, or the workers' polls, share the
        # namespace's budget); the frontend and the cause are what it must name.
        assert frontend["evidence"]["operations"], frontend

        # Throttled starts are retried: every block is stored, exactly as the chain has it.
        await wait_until(
            lambda: fully_indexed(harness, chain, BACKLOG - 1), 240, "the backlog", interval=1.0
        )
    assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, BACKLOG - 1)
    assert await harness.ranges(row.id) == [(0, BACKLOG - 1)]
    assert await rps_refused_starts(limited_temporal) > 0


async def test_up_starts_the_embedded_server_with_its_metrics_and_says_where(
    tmp_path: Path, database_url: str
) -> None:
    """`tindexer up` without TEMPORAL_ADDRESS: its dev server serves /metrics where it says."""
    names = ("temporal", "ui", "server_metrics", "sim", "api", "metrics")
    ports = {name: free_port() for name in names}  # kept from the dev server's own picks
    config = tmp_path / "up.toml"
    config.write_text(f"api_port = {ports['api']}\nmetrics_port = {ports['metrics']}\n")
    args = [sys.executable, "-m", "indexer.cli", "up", "--config", str(config)]
    args += ["--data-dir", str(tmp_path / "data"), "--backlog", "50", "--block-time", "1"]
    args += ["--sim-port", str(ports["sim"]), "--temporal-port", str(ports["temporal"])]
    args += ["--temporal-ui-port", str(ports["ui"])]
    args += ["--temporal-metrics-port", str(ports["server_metrics"])]
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    env["DATABASE_URL"] = database_url
    log = tmp_path / "up.log"
    metrics_url = f"http://{HOST}:{ports['server_metrics']}/metrics"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
        try:

            async def live_and_served() -> bool:
                assert process.returncode is None, log.read_text(errors="replace")
                served = await server_samples(metrics_url, "service_requests")
                return "sim: live" in log.read_text(errors="replace") and any(
                    labels["operation"] == STARTS for labels, _ in served
                )

            await wait_until(
                live_and_served, 120, "up to index and its server to serve metrics",
                retry_on=(aiohttp.ClientError,),
            )  # fmt: skip
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = log.read_text(errors="replace")
    assert (
        f"starting Temporal dev server on 127.0.0.1:{ports['temporal']} (UI "
        f"http://127.0.0.1:{ports['ui']}, metrics {metrics_url})"
    ) in text, text
    with pytest.raises(aiohttp.ClientError):  # stopped with `up`
        await server_samples(metrics_url, "service_requests")
