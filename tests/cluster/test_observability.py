"""Observability across hosts: a real Prometheus on the core host scrapes every worker host and
the API host over the bridge, the per-worker dashboard queries see each live worker, and
killing a worker host while ranges wait fires TindexerWorkerHostDown.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from alerts.build import render_rules
from alerts.config import CONFIG
from dashboards.queries import temporal as q
from tests.support.cluster_hosts import METRICS_PORT, start_api
from tests.support.cluster_prometheus import firing, instant_query, prometheus_config, prometheus_on
from tests.support.cluster_site import BACKLOG, FIGURES, Site
from tests.support.faults import indexed_blocks
from tests.support.provider_proxy import ProviderProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.cluster

WORKERS = 3
# 80 ranges, 6 at once (2 slots a worker), each request answered PROVIDER_DELAY_SECONDS late: most
# ranges wait in the ranges queue for the whole run, so the alert's "ranges queued" holds
# whenever the host is killed. (Straight from the simulated chain, 20,000 small blocks take a
# few seconds: the backfill could end before Prometheus has seen every host.)
BLOCKS_PER_WORKFLOW = 250
SLOTS = 2
PROVIDER_DELAY_SECONDS = 0.5
# The production rule, but firing after 1 s down instead of 2 minutes.
RULES = dataclasses.replace(CONFIG, worker_host_down_for="1s")
ALERT = "TindexerWorkerHostDown"
RANGES_WAITING = 'max(tindexer_task_queue_backlog{task_queue=~".+-ranges",type="activity"}) > 0'
# Scrape every 1 s, evaluate every 1 s, fire after 1 s down; the rest is 2 shared cores.
FIRE_ALLOWANCE = 20.0


def _panel(promql: str, task_queue: str) -> str:
    """A dashboard query with Grafana's variables filled in as a dashboard would."""
    return promql.replace("$__rate_interval", "15s").replace("$task_queue", task_queue)


async def _instances(base: str, promql: str) -> set[str]:
    return {sample["metric"].get("instance", "") for sample in await instant_query(base, promql)}


async def test_prometheus_on_core_sees_every_worker_and_the_worker_host_down_alert(
    site: Site, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        await _see_every_worker_and_the_alert(site, tmp_path, stack)


async def _see_every_worker_and_the_alert(
    site: Site, tmp_path: Path, stack: AsyncExitStack
) -> None:
    network = site.network
    api_host, _ = await start_api(
        network.cluster,
        site.database_url,
        network.core.temporal_address,
        "cluster-test-token",
        site.harness.task_queue,
        serve_metrics=True,
    )
    site.hosts.append(api_host)
    workers = [await site.worker(f"worker-{n}", SLOTS) for n in range(1, WORKERS + 1)]
    instances = {f"{host.address}:{METRICS_PORT}": host for host, _ in workers}
    api_instance = f"{api_host.address}:{METRICS_PORT}"
    rules = tmp_path / "rules.yml"
    rules.write_text(render_rules(RULES))
    config = prometheus_config(rules, {"tindexer": [*instances, api_instance]})
    slow = ProviderProxy(network.chain_url, name="slow")
    slow.delay_seconds = PROVIDER_DELAY_SECONDS
    provider_url = await stack.enter_async_context(slow.running(host=network.cluster.gateway))
    row = await site.harness.add_chain(
        provider_url, head_poll_interval_seconds=0.5, blocks_per_workflow=BLOCKS_PER_WORKFLOW
    )
    task_queue = site.harness.task_queue
    per_worker = {
        "blocks indexed/s": _panel(q.BLOCKS_INDEXED_BY_WORKER, task_queue),
        "activities in flight": _panel(q.ACTIVITIES_IN_FLIGHT_BY_WORKER, task_queue),
        "memory budget use": _panel(q.MEMORY_BUDGET_USE_BY_WORKER, task_queue),
    }
    async with prometheus_on(
        network.core.host, network.core.postgres_address, config, tmp_path
    ) as base:
        await site.harness.start(row.config.name)

        async def every_host_and_worker_seen() -> bool:
            up = await instant_query(base, 'up{job="tindexer"} == 1')
            if {s["metric"]["instance"] for s in up} != {*instances, api_instance}:
                return False
            for promql in per_worker.values():
                if await _instances(base, promql) != set(instances):
                    return False
            return bool(await instant_query(base, RANGES_WAITING))

        async def seen_so_far() -> str:
            found = {name: await _instances(base, p) for name, p in per_worker.items()}
            backlog = await instant_query(base, "tindexer_task_queue_backlog")
            shown = sorted(
                (
                    s["metric"]["instance"],
                    s["metric"]["task_queue"],
                    s["metric"]["type"],
                    s["value"][1],
                )
                for s in backlog
            )
            return f"per-worker panels {found}, backlog {shown}"

        await wait_until(
            every_host_and_worker_seen,
            60,
            "Prometheus to scrape every host and see ranges waiting",
            0.5,
            diagnose=seen_so_far,
        )
        identities = await instant_query(base, "tindexer_worker_info")
        assert sorted(s["metric"]["instance"] for s in identities) == sorted(instances)
        pids = {s["metric"]["instance"]: s["metric"]["worker"] for s in identities}
        for instance, (_, worker) in zip(instances, workers, strict=True):
            assert pids[instance].startswith(f"{worker.pid}@"), pids
        assert await instant_query(base, _panel(q.WORKERS_REPORTING, task_queue))
        assert await firing(base, ALERT) == []

        victim_instance, victim = next(iter(instances.items()))
        at_kill = await indexed_blocks(site.harness.pool, row.id)
        assert at_kill < BACKLOG  # ranges were still to do when the host died
        network.cluster.kill_host(victim)
        killed_at = time.monotonic()

        async def fired() -> bool:
            return bool(await firing(base, ALERT))

        fired_at = await wait_until(fired, FIRE_ALLOWANCE, f"{ALERT} to fire", 0.2)
        alerts = await firing(base, ALERT)
        assert [a["instance"] for a in alerts] == [victim_instance], alerts
        live = set(instances) - {victim_instance}
        reporting = await instant_query(base, q.WORKERS_REPORTING)
        assert float(reporting[0]["value"][1]) == len(live)
        for name, promql in per_worker.items():  # a dead worker's info is stale at once
            assert await _instances(base, promql) == live, name
        ranges_waiting = await instant_query(base, RANGES_WAITING)
    FIGURES.append(
        f"Prometheus on core scraping {WORKERS} worker hosts and the API host: worker host"
        f" {victim.address} killed at {at_kill} of {BACKLOG} blocks with"
        f" {ranges_waiting[0]['value'][1] if ranges_waiting else 0} ranges waiting;"
        f" {ALERT} firing {fired_at - killed_at:.1f} s later (scrape and evaluation every 1 s,"
        " for: 1s)"
    )
