"""The doctor's verdicts on real pages: the shipped Temporal server's (captured by
tests/support/doctor_capture.py) and the indexer's own, built with its real metrics registry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, Counter, generate_latest

from exporter.metrics import Metrics
from indexer.doctor.report import FAMILIES, Report, judge
from indexer.doctor.scrape import (
    INDEXER,
    TEMPORAL,
    Change,
    Scrape,
    parse_samples,
    scrape_all,
    shown_url,
)
from indexer.doctor.temporal_rules import cause_name, scope_name
from indexer.worker_budget import ByteBudget

DATA = Path(__file__).with_name("data") / "doctor"
WINDOWS = json.loads((DATA / "windows.json").read_text())["windows_seconds"]
INDEXER_URL = "http://127.0.0.1:9464/metrics"
TEMPORAL_URL = "http://127.0.0.1:8234/metrics"
MIB = 1024 * 1024


def temporal_page(name: str, at: float) -> Scrape:
    samples, series = parse_samples((DATA / f"temporal-{name}.txt").read_text(), FAMILIES)
    return Scrape(TEMPORAL_URL, TEMPORAL, samples, None, at, series)


def indexer_page(metrics: Metrics, at: float, url: str = INDEXER_URL) -> Scrape:
    samples, series = parse_samples(generate_latest(metrics.registry).decode(), FAMILIES)
    return Scrape(url, INDEXER, samples, None, at, series)


def fresh() -> Metrics:
    """An idle indexer's registry: PostgreSQL up, a provider touched, the budget set."""
    metrics = Metrics(CollectorRegistry())
    metrics.pg_up.set(1)
    metrics.collector_duration.labels("postgres").set(0.004)  # its health collector runs
    metrics.touch_provider("main", "alchemy")
    metrics.worker_memory_budget.set(32 * MIB)
    return metrics


def verdicts(report: Report) -> list[dict[str, Any]]:
    return [v.as_json() for v in report.verdicts]


def components(report: Report) -> list[tuple[str, str]]:
    return [(v.component, v.severity) for v in report.verdicts]


def idle_indexer() -> tuple[Scrape, Scrape]:
    metrics = fresh()
    return indexer_page(metrics, 0.0), indexer_page(metrics, 10.0)


# --- the Temporal server -------------------------------------------------------------------


def test_a_burst_of_starts_names_the_frontend_the_operation_and_the_cause() -> None:
    before, after = idle_indexer()
    window = WINDOWS["burst"]
    report = judge(
        [before, temporal_page("quiet-2", 0.0)],
        [after, temporal_page("burst", window)],
        TEMPORAL_URL,
    )
    first = verdicts(report)[0]
    assert first["component"] == "temporal-frontend"
    assert first["severity"] == "warning"
    assert first["metric"] == "service_errors_resource_exhausted"
    assert first["evidence"] == {
        "service": "frontend",
        "namespace": "default",
        "cause": "RpsLimit",
        "scope": "Namespace",
        "operations": {"StartWorkflowExecution": 120},  # absent before: created at 0
        "rejected": 120,
        "per_second": round(120 / window, 3),
        "window_seconds": round(window, 3),
    }
    rate = 120 / window
    assert first["message"].startswith(
        f"Temporal frontend is rejecting StartWorkflowExecution ({rate:.1f}/s):"
        f" RESOURCE_EXHAUSTED cause RpsLimit, scope namespace, namespace default,"
        f" {rate:.1f}/s over the last {window:.0f} s — raise frontend.namespaceRPS"
    )
    assert first["runbook"] == "docs/runbooks.md#tindexertemporalratelimited"
    # The server's own system workers were refused too (46-42 and 30-27 polls): named apart.
    second = verdicts(report)[1]
    assert (second["component"], second["evidence"]["namespace"]) == (
        "temporal-frontend",
        "temporal_system",
    )
    assert second["evidence"]["operations"] == {
        "PollActivityTaskQueue": 4,
        "PollWorkflowTaskQueue": 3,
    }
    assert "nothing is throttling" not in json.dumps(verdicts(report))
    assert report.sources[1] == {
        "url": TEMPORAL_URL,
        "kind": "temporal",
        "ok": True,
        "series": 131,  # every sample on the captured page, read or not
        "error": None,
    }


def test_a_server_without_refusals_in_the_window_is_not_throttling() -> None:
    before, after = idle_indexer()
    # quiet-2 against itself: the counters exist, none moved.
    report = judge(
        [before, temporal_page("quiet-2", 0.0)], [after, temporal_page("quiet-2", 5.0)], "x"
    )
    assert components(report) == [("indexer", "ok")]
    assert report.verdicts[0].message.startswith("nothing is throttling")
    assert "service_errors_resource_exhausted" in report.verdicts[0].metrics


def test_both_spellings_of_cause_and_scope_read_the_same() -> None:
    assert cause_name("RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT") == "RpsLimit"
    assert cause_name("RpsLimit") == "RpsLimit"
    assert cause_name("RESOURCE_EXHAUSTED_CAUSE_CONCURRENT_LIMIT") == "ConcurrentLimit"
    assert scope_name("RESOURCE_EXHAUSTED_SCOPE_NAMESPACE") == "Namespace"
    assert scope_name("Namespace") == "Namespace"


# --- what the indexer saw of Temporal ------------------------------------------------------


def refused_starts(metrics: Metrics, count: int) -> None:
    """What the scheduler records for each start Temporal refused (activities/scheduling.py)."""
    for _ in range(count):
        metrics.temporal_request_errors.labels("start_workflow", "resource_exhausted").inc()
        metrics.rate_limited.labels("temporal").inc()


def test_without_the_server_the_indexers_refusals_are_named_and_the_blind_spot_said() -> None:
    metrics = fresh()
    before = indexer_page(metrics, 0.0)
    refused_starts(metrics, 38)
    report = judge([before], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("temporal-client", "warning"), ("temporal-server", "note")]
    client, note = verdicts(report)
    assert client["evidence"] == {
        "operations": {"start_workflow": 38},
        "rejected": 38,
        "per_second": 3.8,
        "window_seconds": 10.0,
    }
    assert client["metrics"][0] == "tindexer_rate_limited_total"
    assert "which limit refused is unknown" in client["message"]
    assert note["message"].startswith(
        "cannot see the Temporal server: no temporal_metrics_url configured"
    )


def test_with_the_server_visible_its_verdict_replaces_the_indexers() -> None:
    metrics = fresh()
    before = indexer_page(metrics, 0.0)
    refused_starts(metrics, 38)
    report = judge(
        [before, temporal_page("quiet-2", 0.0)],
        [indexer_page(metrics, 10.0), temporal_page("burst", 10.0)],
        TEMPORAL_URL,
    )
    assert [c for c, _ in components(report)] == ["temporal-frontend", "temporal-frontend"]


def test_an_unreachable_server_is_a_note_and_not_a_guess() -> None:
    before, after = idle_indexer()
    down = Scrape(TEMPORAL_URL, TEMPORAL, None, "ClientConnectorError: refused", 0.0)
    report = judge([before, down], [after, down], TEMPORAL_URL)
    assert components(report) == [("temporal-server", "note"), ("indexer", "ok")]
    assert report.verdicts[0].message == (
        f"cannot see the Temporal server: {TEMPORAL_URL} did not answer"
        " (ClientConnectorError: refused); its limits were not judged"
    )


# --- providers -----------------------------------------------------------------------------


def provider_traffic(metrics: Metrics, provider: str, ok: int, limited: int) -> None:
    requests = metrics.rpc_requests
    requests.labels("main", provider, "eth_getBlockByNumber", "ok").inc(ok)
    requests.labels("main", provider, "eth_getBlockByNumber", "rate_limited").inc(limited)


def test_a_provider_answering_429_to_a_third_is_named_by_its_name() -> None:
    metrics = fresh()
    metrics.touch_provider("main", "infura")
    provider_traffic(metrics, "alchemy", 500, 20)  # before the window: not counted
    before = indexer_page(metrics, 0.0)
    provider_traffic(metrics, "alchemy", 138, 62)
    provider_traffic(metrics, "infura", 196, 4)  # 2 %: the limiter probing, no verdict
    report = judge([before], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("provider", "warning"), ("temporal-server", "note")]
    verdict = verdicts(report)[0]
    assert verdict["message"] == (
        "provider `alchemy` (chain main) answers 429 to 31% of requests: 62 of 200 over the"
        " last 10 s"
    )
    assert verdict["evidence"] == {
        "chain": "main",
        "provider": "alchemy",
        "requests": 200,
        "rate_limited": 62,
        "ratio": 0.31,
        "window_seconds": 10.0,
    }
    assert verdict["metric"] == "tindexer_rpc_requests_total"


def test_providers_are_summed_over_worker_processes() -> None:
    workers = [fresh(), fresh()]
    before = [
        indexer_page(m, 0.0, f"http://127.0.0.1:{9465 + i}/metrics") for i, m in enumerate(workers)
    ]
    for metrics in workers:
        provider_traffic(metrics, "alchemy", 28, 2)  # 2 of 30 each: under MIN_PROVIDER_429S
    after = [
        indexer_page(m, 10.0, f"http://127.0.0.1:{9465 + i}/metrics") for i, m in enumerate(workers)
    ]
    report = judge(before, after, None)
    assert verdicts(report)[0]["evidence"]["rate_limited"] == 4  # 2 + 2: over it together
    assert verdicts(report)[0]["evidence"]["requests"] == 60


def test_a_provider_out_of_rotation_is_named() -> None:
    metrics = fresh()
    metrics.provider_up.labels("main", "alchemy").set(0)
    report = judge([indexer_page(metrics, 0.0)], [indexer_page(metrics, 5.0)], None)
    assert verdicts(report)[0]["message"].startswith(
        "provider `alchemy` (chain main) is out of rotation"
    )


# --- PostgreSQL ----------------------------------------------------------------------------


def test_lock_waits_name_postgresql_with_count_and_age() -> None:
    metrics = fresh()
    before = indexer_page(metrics, 0.0)
    metrics.pg_locks_waiting.set(12)
    metrics.pg_lock_wait_oldest.set(9.2)
    metrics.pg_longest_transaction.set(31.5)
    verdict = verdicts(judge([before], [indexer_page(metrics, 10.0)], None))[0]
    assert verdict["component"] == "postgresql"
    assert verdict["message"] == (
        "PostgreSQL: 12 lock waits, oldest 9.2 s; the longest open transaction is 32 s old"
    )
    assert verdict["metrics"] == [
        "tindexer_pg_locks_waiting",
        "tindexer_pg_lock_wait_oldest_seconds",
        "tindexer_pg_longest_transaction_seconds",
    ]


def test_a_lock_wait_of_milliseconds_is_not_a_verdict() -> None:
    metrics = fresh()
    metrics.pg_locks_waiting.set(1)
    metrics.pg_lock_wait_oldest.set(0.004)
    report = judge([indexer_page(metrics, 0.0)], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("temporal-server", "note"), ("indexer", "ok")]


def test_postgresql_down_is_critical_and_says_nothing_else_about_it() -> None:
    metrics = fresh()
    metrics.pg_up.set(0)
    metrics.pg_locks_waiting.set(3)  # stale from before the outage
    metrics.pg_lock_wait_oldest.set(5)
    report = judge([indexer_page(metrics, 0.0)], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("postgresql", "critical"), ("temporal-server", "note")]
    assert verdicts(report)[0]["evidence"] == {"up": 0, "sources": [INDEXER_URL]}


def test_pg_up_at_zero_without_its_collector_is_not_postgresql_down() -> None:
    """A process that never looks (the workers' supervisor) exports the gauge at its zero."""
    metrics = Metrics(CollectorRegistry())
    assert metrics.registry.get_sample_value("tindexer_pg_up") == 0
    report = judge([indexer_page(metrics, 0.0)], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("temporal-server", "note"), ("indexer", "ok")]


def test_slow_queries_are_judged_on_the_windows_p95() -> None:
    metrics = fresh()
    for _ in range(200):
        metrics.pg_query_duration.labels("store_range").observe(0.2)  # before: not counted
    before = indexer_page(metrics, 0.0)
    for _ in range(30):
        metrics.pg_query_duration.labels("store_range").observe(0.08)
        metrics.pg_query_duration.labels("coverage").observe(0.004)
    report = judge([before], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("postgresql", "warning"), ("temporal-server", "note")]
    verdict = verdicts(report)[0]
    # histogram_quantile: 28.5 of 30 in (0.05, 0.1] -> 0.05 + 0.05 * 28.5 / 30
    assert verdict["evidence"] == {
        "query": "store_range",
        "p95_seconds": 0.0975,
        "queries": 30,
        "window_seconds": 10.0,
    }
    assert verdict["message"].startswith("PostgreSQL is slow: query `store_range` p95 98 ms")


def test_a_pool_in_use_at_both_scrapes_is_exhausted() -> None:
    metrics = fresh()
    metrics.pg_pool_connections.labels("max").set(10)
    metrics.pg_pool_connections.labels("in_use").set(10)
    before = indexer_page(metrics, 0.0)
    report = judge([before], [indexer_page(metrics, 10.0)], None)
    assert verdicts(report)[0]["evidence"] == {"source": INDEXER_URL, "in_use": 10, "max": 10}
    metrics.pg_pool_connections.labels("in_use").set(7)  # one moment below: not exhausted
    report = judge([before], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("temporal-server", "note"), ("indexer", "ok")]


# --- the worker's memory budget ------------------------------------------------------------


async def test_a_full_budget_with_batches_waiting_is_named() -> None:
    """The real ByteBudget: one batch holds all of it while two more wait for room."""
    metrics = fresh()
    budget = ByteBudget(MIB, metrics)
    held = await budget.reserve(MIB)
    loop = asyncio.get_running_loop()
    before = indexer_page(metrics, loop.time())
    waiting = [asyncio.create_task(budget.reserve(MIB // 2)) for _ in range(2)]
    await asyncio.sleep(0.3)
    held.release()
    granted = await asyncio.gather(*waiting)  # both fit now: the budget is full again
    report = judge([before], [indexer_page(metrics, loop.time())], None)
    verdict = verdicts(report)[0]
    assert verdict["component"] == "worker-memory"
    assert verdict["evidence"]["in_flight_bytes"] == MIB == verdict["evidence"]["budget_bytes"]
    # Two batches waited the whole window: about 2 s of waiting per second.
    assert 1.5 < verdict["evidence"]["waiting_seconds_per_second"] <= 2.0
    assert verdict["message"].startswith(
        f"worker memory budget full, ranges waiting: {INDEXER_URL} holds 1 MiB of its 1 MiB"
    )
    for reservation in granted:
        reservation.release()


def test_a_budget_in_use_without_waiting_is_not_a_verdict() -> None:
    metrics = fresh()
    metrics.worker_bytes_in_flight.set(32 * MIB)  # full, but nothing waits
    report = judge([indexer_page(metrics, 0.0)], [indexer_page(metrics, 10.0)], None)
    assert components(report) == [("temporal-server", "note"), ("indexer", "ok")]


# --- sources and counters ------------------------------------------------------------------


def test_an_unreadable_indexer_is_said_and_nothing_is_claimed() -> None:
    down = Scrape(INDEXER_URL, INDEXER, None, "ClientConnectorError: refused", 0.0)
    report = judge([down], [down], None)
    assert components(report) == [("indexer", "warning"), ("temporal-server", "note")]
    assert report.sources == [
        {
            "url": INDEXER_URL,
            "kind": "indexer",
            "ok": False,
            "series": 0,
            "error": "ClientConnectorError: refused",
        }
    ]


def test_a_counter_reset_between_scrapes_counts_from_zero() -> None:
    key = ("x_total", frozenset())
    change = Change(INDEXER_URL, INDEXER, {key: 500.0}, {key: 7.0}, 10.0)
    assert change.increase("x_total") == {frozenset(): 7.0}
    grown = Change(INDEXER_URL, INDEXER, {key: 5.0}, {key: 7.0}, 10.0)
    assert grown.increase("x_total") == {frozenset(): 2.0}


@pytest.mark.parametrize("window", sorted(WINDOWS))
def test_the_captured_windows_are_real_measurements(window: str) -> None:
    assert WINDOWS[window] > 4.0


async def test_a_page_of_megabytes_is_read_whole() -> None:
    """Regression: one read() gave one chunk of the body, and the parser choked on a cut line."""
    filler = CollectorRegistry()
    counter = Counter("filler", "Padding the page past several chunks.", ["n"], registry=filler)
    for n in range(30_000):
        counter.labels(str(n)).inc()
    text = generate_latest(filler).decode() + (DATA / "temporal-burst.txt").read_text()
    assert len(text) > 2 * MIB

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/metrics"))
        (scraped,) = await scrape_all([(url, TEMPORAL)], FAMILIES)
    finally:
        await server.close()
    assert scraped.error is None
    assert scraped.series == 60_000 + 131  # each filler series has its _total and _created
    assert scraped.samples is not None
    starts = frozenset(
        {
            ("namespace", "default"),
            ("operation", "StartWorkflowExecution"),
            ("resource_exhausted_cause", "RpsLimit"),
            ("resource_exhausted_scope", "Namespace"),
            ("service_name", "frontend"),
        }
    )
    assert scraped.samples[("service_errors_resource_exhausted_total", starts)] == 120


def test_an_endpoints_secrets_never_reach_the_report() -> None:
    secret = "https://reader:s3cr3t@metrics.example:9090/metrics?token=t0k3n"
    assert shown_url(secret) == "https://metrics.example:9090/metrics"
    assert shown_url("https://cloud.example/api/KEY1234567/metrics") == "https://cloud.example"
    before, after = idle_indexer()
    down = Scrape(secret, TEMPORAL, None, "ClientResponseError: 401", 0.0)
    report = json.dumps(judge([before, down], [after, down], secret).as_json())
    assert "s3cr3t" not in report and "t0k3n" not in report and "reader" not in report
    assert "https://metrics.example:9090/metrics did not answer" in report
