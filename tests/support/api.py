"""The admin API for tests: a JSON client, the API in this process or as a `tindexer api` child."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from indexer.api.app import create_app
from indexer.api.state import ApiState
from indexer.embedded import child_process, free_port
from tests.support.harness import Harness

TOKEN = "s3cret-test-token"
ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class ApiClient:
    """JSON over real HTTP to an API at `base`; every call returns (status, body)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": sent}
        if data is not None:
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path, token=None)


@contextlib.asynccontextmanager
async def serving_api(harness: Harness, **options: Any) -> AsyncIterator[ApiClient]:
    """The admin API in this process, on the harness's pool, client and task queue.

    `options` replace or add ApiState fields (pool, temporal, allowed_hosts, purge_batch_blocks).
    Its metrics are the harness's, as in `tindexer up`: status shows what its workers saw.
    """
    fields = {"pool": harness.pool, "temporal": harness.client, "token": TOKEN}
    fields["metrics"] = harness.metrics  # what the harness's workers saw of the providers
    state = ApiState(**{**fields, "task_queue": harness.task_queue, **options})
    server = TestServer(create_app(state, sample_rates=False), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield ApiClient(session, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()


def settings_file(tmp_path: Path, task_queue: str) -> Path:
    """A TOML config holding only the task queue; chains come from PostgreSQL."""
    path = tmp_path / f"tindexer-{task_queue}.toml"
    path.write_text(f'task_queue = "{task_queue}"\n')
    return path


def cli_env(database_url: str, temporal_address: str, token: str | None = TOKEN) -> dict[str, str]:
    env = {"DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
    if token is not None:
        env["TINDEXER_API_TOKEN"] = token
    return env


def run_status_cli(database_url: str) -> str:
    """`tindexer status` as a user runs it, with a wide terminal so no column wraps."""
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", **cli_env(database_url, "unused:0")}
    done = subprocess.run(
        [sys.executable, "-m", "indexer.cli", "status"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def api_process(
    database_url: str, temporal_address: str, task_queue: str, tmp_path: Path
) -> Iterator[str]:
    """`tindexer api` as a real child process; yields its base URL; always stopped."""
    port = free_port()
    args = [sys.executable, "-m", "indexer.cli", "api", "--port", str(port)]
    args += ["--config", str(settings_file(tmp_path, task_queue))]
    env = cli_env(database_url, temporal_address)
    with child_process(args, "127.0.0.1", port, log_path=tmp_path / f"api-{port}.log", env=env):
        yield f"http://127.0.0.1:{port}"
