"""Dashboards and alerts against a real Prometheus and Alertmanager scraping a real indexing run.

One stack for the module: a PostgreSQL of its own (so a test may stop it), the simulated chain,
the indexer (worker, collectors, /metrics) in-process, Prometheus configured from
deploy/prometheus.yml with the rules of alerts/ (short `for`s, see TEST_CONFIG), Alertmanager
with the routing and inhibitions of docs/alertmanager.example.yml, and a webhook receiver.
The tests run in file order: a healthy run first, then faults; stopping PostgreSQL is last.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry

from alerts.alertmanager import PAGER, TICKETS, Timing, alertmanager_config
from alerts.build import render_rules
from alerts.config import CONFIG
from alerts.groups import all_groups
from alerts.yamltext import dump
from dashboards.build import DASHBOARDS, render
from dashboards.common import concrete
from exporter.metrics import Metrics
from exporter.temporal_sdk import SdkMetrics
from indexer.embedded import child_process, embedded_postgres, free_port, sim_chain_args
from indexer.observability import serving_metrics
from indexer.store.db import create_pool
from indexer.temporal_client import connect_temporal
from indexer.worker import running_worker
from tests.support.harness import Harness, fully_indexed
from tests.support.temporal_server import TemporalServer
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BACKLOG = 3_000
WIDE_GAP = 100  # blocks mined at once: more than live_edge_blocks, so IndexRange indexes them
HOST = "127.0.0.1"

# Production rules except what must happen within seconds here; the committed durations are
# checked by the promtool unit tests in alerts/tests/.
TEST_CONFIG = dataclasses.replace(
    CONFIG,
    postgres_down_for="1s",
    rpc_rate_limited_for="1s",
    rate_limited_window="15s",
    collector_stale_seconds=12,  # collectors refresh every 1–5 s here
    collector_failing_for="1s",
    slo_budget_interval=None,
)
FAST = Timing(group_wait="1s", group_interval="1s", page_repeat_interval="1h",
              ticket_repeat_interval="1h")  # fmt: skip

# Dashboard queries that return nothing in a healthy run, and why.
EMPTY_WHEN_HEALTHY = {
    "Workflow start failures per second": "error counter: no start fails",
    "Rate-limited requests per second": "error counter: nobody rate-limits a healthy run",
    "SDK request failures per second": "error counter: no Temporal call fails",
    "Indexer's Temporal call errors per second": "error counter: no Temporal call fails",
    "Activity timeout ratio": "error counter: no activity times out",
    "Activity timeouts per second": "error counter: no activity times out",
    "Activity failures (SDK)": "error counter: no activity fails",
    "429s per second": "error counter: the simulated chain answers every request",
    "429 ratio": "error counter: the simulated chain answers every request",
    "Collector failures per second": "error counter: every collector refresh succeeds",
    "Top statements by time": "pg_stat_statements is not loaded in the test's PostgreSQL",
    "RESOURCE_EXHAUSTED by cause and scope": "the session's Temporal refuses nothing",
    "Workflow starts refused for the RPS limit": "the session's Temporal refuses nothing",
    "Persistence RESOURCE_EXHAUSTED": "the session's Temporal refuses nothing",
    "Server error ratio": "error counter: no Temporal service fails",
    "SDK request failures by status": "error counter: no Temporal call fails",
    "SDK long-poll failures": "error counter: no long poll fails",
    # Server 1.32's matching reports backlog gauges on an interval of about a minute, and a
    # long poll times out after a minute without work: this run is shorter than either.
    "Approximate backlog": "reported about once a minute, after this run",
    "Approximate backlog age": "reported about once a minute, after this run",
    "Polls answered vs empty": "a poll comes back empty after a minute without work",
}


class Webhook:
    """Alertmanager's webhook receiver: records (receiver, alert) for every notification."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        for alert in payload["alerts"]:
            self.received.append((request.match_info["receiver"], alert))
        return web.Response()

    async def wait_until_firing(self, alertname: str, timeout: float) -> None:
        async def arrived() -> bool:
            return bool(self.firing(alertname))

        await wait_until(arrived, timeout, f"{alertname} at the webhook")

    def firing(self, alertname: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (receiver, alert)
            for receiver, alert in self.received
            if alert["labels"]["alertname"] == alertname and alert["status"] == "firing"
        ]

    async def start(self, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{receiver}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        return runner


@dataclasses.dataclass
class Stack:
    harness: Harness
    metrics: Metrics
    chain: str
    sim_url: str
    prometheus: str
    alertmanager: str
    webhook: Webhook
    stop_postgres: Callable[[], None]
    started: float


def prometheus_config(rules: Path, target: str, alertmanager: str, temporal: str) -> str:
    """deploy/prometheus.yml as users get it, pointed at this test's parts, every second."""
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    for old, new in (
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("../alerts/rules.yml", str(rules)),
        ("127.0.0.1:9093", alertmanager),
        ("127.0.0.1:9464", target),
        ("127.0.0.1:8234", temporal),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: run `make install` (Debian's prometheus packages)"
    return path


async def post(url: str, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200, await response.text()


async def get_json(url: str, **params: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    body = await get_json(f"{stack.prometheus}/api/v1/query", query=promql)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def prometheus_alerts(stack: Stack, alertname: str) -> list[dict[str, Any]]:
    body = await get_json(f"{stack.prometheus}/api/v1/alerts")
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == alertname]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: TemporalServer
) -> AsyncIterator[Stack]:
    temporal_address = temporal_server.address
    temporal_metrics = urlsplit(temporal_server.metrics_url).netloc
    tmp = tmp_path_factory.mktemp("alerting")
    ports = {name: free_port() for name in ("sim", "metrics", "prometheus", "am", "webhook")}
    started = time.monotonic()
    with contextlib.ExitStack() as processes:
        postgres = contextlib.ExitStack()
        processes.callback(postgres.close)
        database_url = postgres.enter_context(embedded_postgres(tmp / "pg"))
        sim_args = sim_chain_args(ports["sim"], backlog=BACKLOG, block_time=0.5, txs_per_block=2)
        processes.enter_context(child_process(sim_args, HOST, ports["sim"], tmp / "sim.log"))

        webhook = Webhook()
        hook = f"http://{HOST}:{ports['webhook']}"
        receivers = {
            name: {"webhook_configs": [{"url": f"{hook}/{name}", "send_resolved": False}]}
            for name in (PAGER, TICKETS)
        }
        am_config = tmp / "alertmanager.yml"
        am_config.write_text(dump(alertmanager_config(all_groups(TEST_CONFIG), receivers, FAST)))
        am_args = [
            binary("prometheus-alertmanager"),
            f"--config.file={am_config}",
            f"--storage.path={tmp / 'alertmanager'}",
            f"--web.listen-address={HOST}:{ports['am']}",
            "--cluster.listen-address=",
        ]
        processes.enter_context(child_process(am_args, HOST, ports["am"], tmp / "am.log"))
        rules = tmp / "rules.yml"
        rules.write_text(render_rules(TEST_CONFIG))
        prometheus_yml = tmp / "prometheus.yml"
        prometheus_yml.write_text(
            prometheus_config(
                rules, f"{HOST}:{ports['metrics']}", f"{HOST}:{ports['am']}", temporal_metrics
            )
        )
        prometheus_args = [
            binary("prometheus"),
            f"--config.file={prometheus_yml}",
            f"--storage.tsdb.path={tmp / 'prometheus'}",
            f"--web.listen-address={HOST}:{ports['prometheus']}",
        ]
        processes.enter_context(
            child_process(prometheus_args, HOST, ports["prometheus"], tmp / "prometheus.log")
        )

        hook_runner = await webhook.start(ports["webhook"])
        pool = await create_pool(database_url, max_size=10)
        metrics = Metrics(CollectorRegistry())
        sdk = SdkMetrics(metrics)
        client = await connect_temporal(temporal_address, runtime=sdk.runtime)
        harness = Harness(pool, client)
        harness.metrics = metrics
        try:
            async with (
                serving_metrics(
                    metrics,
                    HOST,
                    ports["metrics"],
                    pool=pool,
                    database_url=database_url,
                    client=client,
                    sdk=sdk,
                    task_queues=[harness.task_queue],
                    progress=True,
                ),
                running_worker(client, pool, harness.task_queue, metrics=metrics),
            ):
                sim_url = f"http://{HOST}:{ports['sim']}"
                row = await harness.add_chain(
                    sim_url,
                    blocks_per_workflow=50,
                    catchup_threshold=500,  # the backlog goes through the Scheduler workflow
                    continue_as_new_threshold=10,  # which continues as new a few times
                    scheduler_batch_size=5,
                    head_poll_interval_seconds=0.5,
                )
                await harness.start(row.config.name)
                yield Stack(
                    harness,
                    metrics,
                    row.config.name,
                    sim_url,
                    f"http://{HOST}:{ports['prometheus']}",
                    f"http://{HOST}:{ports['am']}",
                    webhook,
                    postgres.close,
                    started,
                )
                await harness.terminate_chain_workflows()
        finally:
            pool.terminate()
            await hook_runner.cleanup()


async def reorg_stored_blocks(stack: Stack, stored: int = 3) -> None:
    """Fork the chain deep enough to replace `stored` blocks the indexer has already stored
    (the live edge may lag a block or two: a shallower fork could go unnoticed)."""
    row = await stack.harness.chain(stack.chain)
    newest = await stack.harness.pool.fetchval(
        "SELECT max(number) FROM blocks WHERE chain_id = $1", row.id
    )
    head = (await get_json(f"{stack.sim_url}/_sim/state"))["head"]
    depth = head - newest + stored + 2  # + 2: the chain grows meanwhile (a block per 0.5 s)
    await post(f"{stack.sim_url}/_sim/reorg", {"depth": depth})


async def test_every_dashboard_query_returns_data_after_a_real_run(stack: Stack) -> None:
    chain, metrics = stack.chain, stack.metrics.registry
    await wait_until(lambda: fully_indexed(stack.harness, chain, BACKLOG - 1), 120, "backfill")
    await reorg_stored_blocks(stack)  # reorgs are part of a real run

    async def reorg_repaired() -> bool:
        return (metrics.get_sample_value("tindexer_reorgs_total", {"chain": chain}) or 0) >= 1

    await wait_until(reorg_repaired, 60, "the reorg to be repaired")
    # A gap wider than the live edge: IndexRange workflows scheduled while Prometheus watches
    # (a live chain followed by its head scan schedules none after the backfill).
    await post(f"{stack.sim_url}/_sim/mine", {"blocks": WIDE_GAP})

    async def scraped_and_recorded() -> bool:
        ready = (
            # Prometheus has scraped the repaired reorg (the counter exists at zero from the
            # start, so its sample count alone proves nothing), and the depth histogram, a new
            # series, at least twice, as rate() needs
            f'tindexer_reorgs_total{{chain="{chain}"}} >= 1',
            f'count_over_time(tindexer_reorg_depth_count{{chain="{chain}"}}[1m]) >= 2',
            # the slowest collectors (5 s) have refreshed while Prometheus watched
            "increase(tindexer_pg_probe_latency_seconds_count[1m]) >= 1",
            "increase(tindexer_collector_last_success_timestamp_seconds"
            '{collector="temporal_task_queues"}[1m]) > 0',
            "chain:tindexer_rpc_requests_failed:ratio_rate30d",
            # new blocks seen at the head were stored, at least twice as rate() needs, and
            # the freshness SLO recorded over them
            f'count_over_time(tindexer_block_freshness_seconds_count{{chain="{chain}"}}[1m]) >= 2',
            # the wide gap's ranges were scheduled and indexed in Prometheus's sight
            f'increase(tindexer_schedule_batch_duration_seconds_count{{chain="{chain}"}}[1m]) > 0',
            'increase(tindexer_activity_duration_seconds_count{activity="index_range"}[1m]) > 0',
            "chain:tindexer_block_freshness_slow:ratio_rate30d",
        )
        return all([await query(stack, promql) for promql in ready])

    await wait_until(scraped_and_recorded, 30, "Prometheus to scrape the reorg and record SLOs")

    # $__rate_interval spans the whole run, as on a dashboard showing the last few minutes.
    window = f"{int(time.monotonic() - stack.started) + 10}s"
    values = {"__rate_interval": window, "__interval": "1s", "__range": window}
    values |= {"chain": chain, "task_queue": stack.harness.task_queue, "namespace": "default"}
    empty, without_number, answered = [], [], 0
    for name in DASHBOARDS:
        for panel in render(name)["panels"]:
            for target in panel.get("targets", []):
                result = await query(stack, concrete(target["expr"], values))
                label = f"{name}: {panel['title']} ({target['refId']})"
                if not result:
                    if panel["title"] not in EMPTY_WHEN_HEALTHY:
                        empty.append(f"{label}: {target['expr']}")
                    continue
                answered += 1
                if not any(math.isfinite(float(r["value"][1])) for r in result):
                    without_number.append(f"{label}: {result}")
    assert not empty, "queries without data:\n" + "\n".join(empty)
    assert not without_number, f"only NaN/Inf: {without_number}"
    assert answered >= 60


async def test_rpc_rate_limits_reach_the_ticket_receiver(stack: Stack) -> None:
    faults = f"{stack.sim_url}/_sim/faults"
    await post(faults, {"rate_limit_ratio": 0.5, "retry_after_seconds": 0.05})
    try:
        await stack.webhook.wait_until_firing("TindexerRPCRateLimited", 90)
    finally:
        await post(faults, {"rate_limit_ratio": 0})
    (receiver, alert), *_ = stack.webhook.firing("TindexerRPCRateLimited")
    assert receiver == TICKETS
    assert alert["labels"] == {
        "alertname": "TindexerRPCRateLimited",
        "chain": stack.chain,
        "severity": "warning",
    }
    annotations = alert["annotations"]
    assert annotations["summary"] == (
        "A chain's JSON-RPC provider keeps answering 429 Too Many Requests."
    )
    assert annotations["description"].endswith(
        f"of JSON-RPC requests to chain {stack.chain}'s provider were rate-limited over the "
        "last 15s."
    )
    assert annotations["runbook_url"] == "docs/runbooks.md#tindexerrpcratelimited"
    refused = sum(
        sample.value
        for family in stack.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "tindexer_rpc_requests_total"
        and sample.labels["chain"] == stack.chain
        and sample.labels["outcome"] == "rate_limited"
    )
    assert refused > 0
    assert not stack.webhook.firing("TindexerPostgresDown")


async def test_postgres_down_pages_while_what_depends_on_it_is_inhibited(stack: Stack) -> None:
    await asyncio.to_thread(stack.stop_postgres)

    await stack.webhook.wait_until_firing("TindexerPostgresDown", 60)
    (receiver, alert), *_ = stack.webhook.firing("TindexerPostgresDown")
    assert receiver == PAGER
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["job"] == "tindexer"
    assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#tindexerpostgresdown"
    assert stack.metrics.registry.get_sample_value("tindexer_pg_up") == 0

    # The collectors reading PostgreSQL go stale, so their alert fires in Prometheus …
    async def collectors_alert_firing() -> bool:
        firing = [
            a for a in await prometheus_alerts(stack, "TindexerCollectorFailing")
            if a["state"] == "firing"
        ]  # fmt: skip
        return {"postgres", "progress"} <= {a["labels"]["collector"] for a in firing}

    await wait_until(collectors_alert_firing, 60, "TindexerCollectorFailing to fire")

    # … and reaches Alertmanager, which holds it back because PostgreSQL is down.
    async def suppressed_in_alertmanager() -> bool:
        alerts = await get_json(
            f"{stack.alertmanager}/api/v2/alerts", filter='alertname="TindexerCollectorFailing"'
        )
        states = {a["labels"]["collector"]: a["status"] for a in alerts}
        return {"postgres", "progress"} <= set(states) and all(
            s["state"] == "suppressed" and s["inhibitedBy"] for s in states.values()
        )

    await wait_until(suppressed_in_alertmanager, 30, "Alertmanager to inhibit the collectors")
    await asyncio.sleep(3)  # longer than group_wait + group_interval: it would have been sent
    assert not stack.webhook.firing("TindexerCollectorFailing")
    # The indexer itself kept serving metrics through the outage.
    assert await query(stack, 'up{job="tindexer"} == 1')
