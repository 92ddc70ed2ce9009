"""A provider's API key stays in the stored config: a real indexing through a failing provider,
then every place the key could have reached — logs, /metrics, every unauthenticated API answer,
and the Temporal server's stored data (histories and its database file) — is searched for it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from indexer.api.app import serving_api
from indexer.api.state import ApiState
from indexer.doctor.sampler import DoctorSampler
from indexer.embedded import child_process, free_port, temporal_dev_server_args
from indexer.observability import serving_metrics
from indexer.store.db import create_pool
from indexer.temporal_client import connect_temporal
from tests.support.harness import Harness, fully_indexed
from tests.support.provider_proxy import KEY_PATH, Answer, ProviderProxy
from tests.support.waiting import wait_until

BACKLOG = 400
PATH_KEY = KEY_PATH.rsplit("/", 1)[1]
QUERY_KEY = "5ecre7query0key0fedcba9876543210"
TOKEN = "key-leak-test-token"


FAULTY_REQUESTS = 200  # then the provider recovers, so the backlog ends in bounded time


def failing_now_and_then(url: str) -> tuple[Answer, dict[str, int]]:
    """Of the first FAULTY_REQUESTS requests, every 5th an error page echoing the URL, every
    7th a 429, every 11th garbage: enough for failed attempts to reach Temporal. Failing for
    ever, one range could draw failures attempt after attempt (a range of several batches needs
    each to succeed within two tries) until Temporal's retry backoff outlasted the wait."""
    seen = {"requests": 0, "failed": 0}

    def answer(calls: list[dict[str, Any]]) -> web.Response | None:
        seen["requests"] += 1
        n = seen["requests"]
        if n > FAULTY_REQUESTS or (n % 5 and n % 7 and n % 11):
            return None
        seen["failed"] += 1
        if n % 5 == 0:
            return web.Response(status=500, text=f"upstream {url} failed")
        if n % 7 == 0:
            return web.Response(status=429, headers={"Retry-After": "0"}, text=url)
        return web.Response(
            status=200,
            text=f'{{"jsonrpc": "2.0", "oops": "{url}"',
        )

    return answer, seen


async def _get_all(base: str, paths: list[str]) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        answers = {}
        for path in paths:
            async with session.get(base + path) as response:
                answers[path] = (
                    f"{response.status} {dict(response.headers)} {await response.text()}"
                )
        return answers


def _stored_by_temporal(directory: Path) -> bytes:
    """The dev server's database file and its write-ahead log, as bytes."""
    return b"".join(path.read_bytes() for path in sorted(directory.glob("temporal.db*")))


def _leaks(where: str, text: str) -> list[str]:
    return [f"{key} in {where}" for key in (PATH_KEY, QUERY_KEY) if key in text]


async def test_the_key_reaches_no_log_metric_api_answer_or_temporal_storage(
    tmp_path: Path,
    sim_chain: Callable[..., str],
    postgres_admin_url: str,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    temporal_port = free_port()
    db_file = tmp_path / "temporal.db"
    args = temporal_dev_server_args(temporal_port, db_file=db_file)
    upstream = sim_chain(backlog=BACKLOG, txs_per_block=2)
    proxy = ProviderProxy(upstream)
    with child_process(args, "127.0.0.1", temporal_port, log_path=tmp_path / "temporal.log"):
        client = await connect_temporal(f"127.0.0.1:{temporal_port}")
        pool = await create_pool(database_url)
        harness = Harness(pool, client)
        metrics_port = free_port()
        api = ApiState(pool=pool, temporal=client, token=TOKEN, task_queue=harness.task_queue)
        api.doctor = DoctorSampler([f"http://127.0.0.1:{metrics_port}/metrics"], None, 1.0)
        try:
            async with (
                proxy.running() as proxy_url,
                serving_metrics(
                    harness.metrics, "127.0.0.1", metrics_port, pool=pool, progress=True
                ),
                serving_api(api, "127.0.0.1", 0) as api_port,
            ):
                rpc_url = f"{proxy_url}?apikey={QUERY_KEY}"
                proxy.answer, seen = failing_now_and_then(rpc_url)
                # One retry per request: some ranges fail an attempt, so their errors are
                # written into Temporal (the activity's last failure) before they succeed.
                row = await harness.add_chain(
                    rpc_url, blocks_per_workflow=50, rpc_max_retries=1, rpc_batch_size=20
                )
                name = row.config.name
                async with harness.worker():
                    await harness.start(name)
                    await wait_until(
                        lambda: fully_indexed(harness, name, BACKLOG - 1), 120, "the backlog"
                    )
                    await harness.terminate_chain_workflows()
                assert seen["failed"] > 10, seen
                base = f"http://127.0.0.1:{api_port}"
                api_answers = await _get_all(
                    base,
                    [
                        "/chains",
                        f"/chains/{name}",
                        "/chains/status",
                        f"/chains/{name}/status",
                        f"/chains/{name}/gaps",
                        "/healthz",
                        "/readyz",
                        "/openapi.json",
                        "/doctor",
                        "/chains/nope",
                    ],
                )
                metrics_text = (await _get_all(f"http://127.0.0.1:{metrics_port}", ["/metrics"]))[
                    "/metrics"
                ]
                histories = []
                async for execution in client.list_workflows(
                    f"WorkflowId STARTS_WITH 'index:{name}:'"
                ):
                    history = await client.get_workflow_handle(execution.id).fetch_history()
                    histories.append(history.to_json())
        finally:
            await pool.close()
    # The server has stopped: its database file (and write-ahead log) holds all it stored.
    stored = _stored_by_temporal(tmp_path)
    logs = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {getattr(r, '__dict__', {})}" for r in caplog.records
    )
    captured = capfd.readouterr()
    # The searches can find what is there: the failures were stored, with the public URL.
    public = f"127.0.0.1:{proxy_url.split(':')[2].split('/')[0]}"
    assert public.encode() in stored, "no RPC failure reached Temporal: the search proves nothing"
    assert any('"attempt": 2' in h or '"attempt":2' in h for h in histories)
    leaks = [
        *_leaks("log records", logs),
        *_leaks("stdout/stderr", captured.out + captured.err),
        *_leaks("/metrics", metrics_text),
        *(leak for path, text in api_answers.items() for leak in _leaks(f"GET {path}", text)),
        *(leak for h in histories for leak in _leaks("a workflow history", h)),
        *[
            f"{key} in Temporal's database"
            for key in (PATH_KEY, QUERY_KEY)
            if key.encode() in stored
        ],
    ]
    assert leaks == []
