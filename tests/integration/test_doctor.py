"""`tindexer doctor` and GET /doctor on real parts: a provider answering 429, a PostgreSQL lock
held by the test, a Temporal dev server with a low namespace RPS under the indexer's backlog,
and a healthy run. Each verdict names its component, evidence and metric."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.service import RPCError

from exporter.metrics import Metrics
from exporter.temporal_sdk import SdkMetrics
from indexer.config import ProviderConfig
from indexer.doctor.report import diagnose
from indexer.doctor.sampler import DoctorSampler
from indexer.embedded import child_process, free_port, temporal_dev_server_args
from indexer.observability import serving_metrics
from indexer.temporal_client import connect_temporal, start_head_scan
from indexer.worker import running_worker
from tests.support.api import serving_api
from tests.support.harness import Harness, ObservedIndexer, fully_indexed
from tests.support.provider_proxy import Answer, ProviderProxy
from tests.support.simchain import sim_head
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
WINDOW_SECONDS = 3.0
NAMESPACE_RPS = 5  # low enough that the scheduler's parallel starts are refused


def doctor_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`tindexer doctor` as a user runs it (a wide terminal, so no line wraps)."""
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "indexer.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def every_third_refused() -> Answer:
    """429 (Retry-After 0) to every third request, never two in a row: a plan a third too small."""
    requests = count(1)

    def answer(calls: list[dict[str, Any]]) -> web.Response | None:
        if next(requests) % 3:
            return None
        return web.Response(status=429, headers={"Retry-After": "0"}, text="slow down")

    return answer


def by_component(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["component"]: v for v in report["verdicts"]}


async def test_a_provider_answering_429_is_named_by_its_name_never_its_url(
    observed_indexer: ObservedIndexer, sim_chain: Callable[..., str]
) -> None:
    harness = observed_indexer.harness
    url = sim_chain(backlog=200, txs_per_block=1, block_time=0.1)  # traffic for the window
    proxy = ProviderProxy(url, name="alchemy")
    async with proxy.running():
        row = await harness.add_chain(
            None,
            providers=[ProviderConfig(name="alchemy", url=proxy.url)],
            head_poll_interval_seconds=0.1,  # a steady stream of requests once indexed
        )
        chain = row.config.name
        async with harness.worker():
            await harness.start(chain)
            await wait_until(lambda: fully_indexed(harness, chain, 199), 60, "the backlog")
            proxy.answer = every_third_refused()

            async def refusing() -> bool:
                # Any method: which requests fall on "every third" depends on how many a head
                # scan makes, so one method alone may never be refused.
                refused = sum(
                    harness.sample(
                        "tindexer_rpc_requests_total",
                        chain=chain,
                        provider="alchemy",
                        method=method,
                        outcome="rate_limited",
                    )
                    for method in ("eth_blockNumber", "eth_getBlockByNumber")
                )
                return refused >= 3

            await wait_until(refusing, 30, "the indexer to count 429s")
            report = (await diagnose([observed_indexer.url], None, 5.0)).as_json()
    verdict = by_component(report)["provider"]
    assert verdict["severity"] == "warning"
    assert verdict["metric"] == "tindexer_rpc_requests_total"
    evidence = verdict["evidence"]
    print(f"doctor on a provider refusing every third request: {evidence}")
    assert (evidence["chain"], evidence["provider"]) == (chain, "alchemy")
    # Every third request refused, counted over whole requests in the window: a third, give
    # or take the one request at each edge of the window.
    assert evidence["requests"] >= 15, evidence
    assert abs(evidence["rate_limited"] - evidence["requests"] / 3) <= 1, evidence
    assert verdict["message"].startswith(f"provider `alchemy` (chain {chain}) answers 429 to")
    assert proxy.url not in json.dumps(report)  # the key in its path never leaves the config
    assert f"127.0.0.1:{proxy.port}" not in json.dumps(report)
    assert by_component(report)["temporal-server"]["severity"] == "note"


@pytest.fixture
async def lock_waiter(harness: Harness, database_url: str) -> Any:
    """A test table locked by one transaction while a second connection waits for it."""
    await harness.pool.execute("CREATE TABLE doctor_probe (id int)")
    holder = await asyncpg.connect(database_url)
    waiter = await asyncpg.connect(database_url)
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("LOCK TABLE doctor_probe IN ACCESS EXCLUSIVE MODE")
    waiting = asyncio.create_task(waiter.fetchval("SELECT count(*) FROM doctor_probe"))
    try:
        yield waiting
    finally:
        await transaction.rollback()
        assert await waiting == 0  # it got its answer once the lock was gone
        await holder.close()
        await waiter.close()


async def test_a_held_postgresql_lock_names_postgresql_in_the_cli_and_the_api(
    observed_indexer: ObservedIndexer, lock_waiter: Any
) -> None:
    harness = observed_indexer.harness

    async def waited_a_second() -> bool:
        waiting = harness.sample("tindexer_pg_locks_waiting")
        return waiting >= 1 and harness.sample("tindexer_pg_lock_wait_oldest_seconds") >= 1.0

    await wait_until(waited_a_second, 30, "the health collector to see a lock wait of 1 s")
    report = (await diagnose([observed_indexer.url], None, WINDOW_SECONDS)).as_json()
    verdict = by_component(report)["postgresql"]
    assert verdict["severity"] == "warning"
    assert verdict["metrics"][:2] == [
        "tindexer_pg_locks_waiting",
        "tindexer_pg_lock_wait_oldest_seconds",
    ]
    assert verdict["evidence"]["locks_waiting"] >= 1
    # The test's waiter is still waiting: its wait is at least the second waited for above.
    assert verdict["evidence"]["oldest_wait_seconds"] >= 1.0
    assert verdict["message"].startswith(
        f"PostgreSQL: {verdict['evidence']['locks_waiting']} lock waits, oldest"
    )
    assert not lock_waiter.done()

    sampler = DoctorSampler([observed_indexer.url], None, window_seconds=1.0)
    async with serving_api(harness, doctor=sampler) as api:
        status, body = await api.get("/doctor")
        assert status == 200
        assert set(body) == {"verdicts", "sources", "window_seconds"}
        assert body["window_seconds"] >= 1.0
        assert body["sources"] == [
            {
                "url": observed_indexer.url,
                "kind": "indexer",
                "ok": True,
                "series": body["sources"][0]["series"],
                "error": None,
            }
        ]
        assert body["sources"][0]["series"] > 100
        api_verdict = by_component(body)["postgresql"]
        assert set(api_verdict) == set(verdict)
        assert api_verdict["evidence"]["oldest_wait_seconds"] >= 1.0
        # A second request judges against the first's scrapes: the same answer, no new wait.
        status, again = await api.get("/doctor")
        assert status == 200
        assert by_component(again)["postgresql"]["metric"] == verdict["metric"]
        assert again["window_seconds"] >= 1.0


async def test_a_healthy_run_is_nothing_throttling(
    observed_indexer: ObservedIndexer, sim_chain: Callable[..., str]
) -> None:
    harness = observed_indexer.harness
    url = sim_chain(backlog=300, txs_per_block=2)
    row = await harness.add_chain(url)
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        head = await sim_head(url)
        await wait_until(lambda: fully_indexed(harness, chain, head), 60, "the backlog")
        done = await asyncio.to_thread(
            doctor_cli, "--window", "2", "--metrics-url", observed_indexer.url
        )
        report = json.loads(
            (
                await asyncio.to_thread(
                    doctor_cli, "--json", "--window", "2", "--metrics-url", observed_indexer.url
                )
            ).stdout
        )
    assert done.returncode == 0, done.stderr
    assert "OK indexer: nothing is throttling" in done.stdout
    assert "NOTE temporal-server: cannot see the Temporal server: no temporal_metrics_url" in (
        done.stdout
    )
    print(done.stdout)
    headlines = [
        line.split(":", 1)[0]
        for line in done.stdout.splitlines()
        if line.startswith(("CRITICAL ", "WARNING ", "NOTE ", "OK "))
    ]
    assert headlines == ["NOTE temporal-server", "OK indexer"], done.stdout
    assert [(v["component"], v["severity"]) for v in report["verdicts"]] == [
        ("temporal-server", "note"),
        ("indexer", "ok"),
    ]
    assert report["verdicts"][1]["message"].startswith("nothing is throttling")
    assert report["sources"][0]["ok"] is True
    assert 2.0 <= report["window_seconds"] < 10.0


@pytest.fixture(scope="module")
def limited_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A dev server whose namespace takes NAMESPACE_RPS requests a second, and its metrics URL."""
    port, metrics_port = free_port(), free_port()
    args = temporal_dev_server_args(
        port,
        dynamic_config={
            "frontend.namespaceRPS": str(NAMESPACE_RPS),
            "frontend.namespaceBurstRatio": "1",
        },
    )
    args += ["--metrics-port", str(metrics_port)]
    log = tmp_path_factory.mktemp("doctor-temporal") / "temporal.log"
    with child_process(args, "127.0.0.1", port, log_path=log):
        yield f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"


@contextlib.asynccontextmanager
async def starting_all_along(client: Client) -> AsyncIterator[None]:
    """Start workflows (on a queue nobody polls) from 16 tasks until the block ends."""

    async def starter() -> None:
        while True:
            with contextlib.suppress(RPCError):
                await client.start_workflow(
                    "Nothing", id=f"burst-{uuid.uuid4().hex}", task_queue="nobody"
                )

    tasks = [asyncio.create_task(starter()) for _ in range(16)]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def server_refuses_starts(metrics_url: str) -> bool:
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        text = await response.text()
    return any(
        line.startswith("service_errors_resource_exhausted{")
        and 'operation="StartWorkflowExecution"' in line
        and 'namespace="default"' in line
        for line in text.splitlines()
    )


async def test_a_throttling_frontend_is_named_with_its_cause_and_scope(
    harness: Harness,
    limited_temporal: tuple[str, str],
    sim_chain: Callable[..., str],
    database_url: str,
) -> None:
    address, server_metrics = limited_temporal
    metrics = Metrics(CollectorRegistry())
    sdk = SdkMetrics(metrics)
    client = await connect_temporal(address, runtime=sdk.runtime)
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    port = free_port()
    indexer_url = f"http://127.0.0.1:{port}/metrics"
    # 600 ranges of 5 blocks: at most 5 starts a second, minutes of refusals for the window.
    row = await harness.add_chain(
        sim_chain(backlog=3_000, txs_per_block=1),
        blocks_per_workflow=5,
        catchup_threshold=0,
        parallelism=64,
        scheduler_batch_size=120,
        max_inflight_ranges=1_000,
    )
    async with (
        serving_metrics(metrics, "127.0.0.1", port, pool=harness.pool, sdk=sdk),
        running_worker(client, harness.pool, task_queue, metrics=metrics),
    ):
        await start_head_scan(client, row.config.name, task_queue)
        await wait_until(
            lambda: server_refuses_starts(server_metrics), 120, "the frontend refusing starts"
        )
        # Starts from a plain client too, all along the CLI's window: the scheduler's own come in
        # bursts between its batches, and the window must hold refused starts whatever it hits.
        async with starting_all_along(client):
            done = await asyncio.to_thread(
                doctor_cli,
                "--json",
                "--window",
                str(WINDOW_SECONDS),
                "--metrics-url",
                indexer_url,
                "--temporal-metrics-url",
                server_metrics,
            )
        blind: dict[str, Any] = {}

        async def indexer_saw_refusals() -> bool:
            """Without the server's metrics: the scheduler's own count of refused starts."""
            blind.update((await diagnose([indexer_url], None, WINDOW_SECONDS)).as_json())
            return "temporal-client" in by_component(blind)

        await wait_until(indexer_saw_refusals, 120, "a window with the scheduler refused")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    frontend = report["verdicts"][0]
    assert frontend["component"] == "temporal-frontend"
    assert frontend["metric"] == "service_errors_resource_exhausted"
    evidence = frontend["evidence"]
    assert (evidence["namespace"], evidence["cause"], evidence["scope"]) == (
        "default",
        "RpsLimit",
        "Namespace",
    )
    assert evidence["operations"].get("StartWorkflowExecution", 0) >= 1, evidence
    assert "RESOURCE_EXHAUSTED cause RpsLimit, scope namespace" in frontend["message"]
    assert "raise frontend.namespaceRPS" in frontend["message"]
    assert "temporal-client" not in by_component(report)  # the server's verdict says more
    assert [s["kind"] for s in report["sources"] if s["ok"]] == ["indexer", "temporal"]
    client_verdict = by_component(blind)["temporal-client"]
    assert client_verdict["evidence"]["operations"].get("start_workflow", 0) >= 1
    assert "which limit refused is unknown" in client_verdict["message"]
    assert by_component(blind)["temporal-server"]["severity"] == "note"
