"""Real services for the tests: Temporal, PostgreSQL, the simulated chain, anvil; the harness."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client

from indexer.embedded import (
    child_process,
    embedded_postgres,
    free_port,
    sim_chain_args,
    temporal_dev_server_args,
)
from indexer.lifecycle import close_pool
from indexer.store.db import create_pool
from indexer.temporal_client import connect_temporal

# Before tests.support is imported: its helpers assert, and a failure should explain itself.
pytest.register_assert_rewrite("tests.support")
from tests.support.harness import Harness  # noqa: E402
from tests.support.temporal_server import TemporalServer  # noqa: E402
from tests.support.waiting import teardown_step  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


# --- temporary files --------------------------------------------------------------------------
# pytest makes /tmp/pytest-of-<user> private (0700) whenever a session starts. An embedded
# PostgreSQL started as root runs as pgserver's own user, which must traverse its data
# directory's parents: a second test session started beside this one would lock it out of them
# (initdb and pg_ctl then fail). Each session gets a temporary root of its own instead.
_own_basetemp: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _own_basetemp
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        _own_basetemp = config.option.basetemp = tempfile.mkdtemp(prefix="tindexer-pytest-")


# --- process exit -----------------------------------------------------------------------------
# The Temporal SDK's runtime can segfault during interpreter teardown after every test passed.
# Exit with pytest's own status before teardown, so only real failures turn the build red.
_exit_status: int | None = None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _own_basetemp is not None:
        shutil.rmtree(_own_basetemp, ignore_errors=True)
    if _exit_status is not None and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


# --- services ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """An in-memory Temporal dev server for the whole session, its metrics on a port of its own."""
    port, metrics_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("temporal") / "temporal.log"
    args = temporal_dev_server_args(port, metrics_port=metrics_port)
    with child_process(args, "127.0.0.1", port, log_path=log):
        yield TemporalServer(f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics")


@pytest.fixture(scope="session")
def temporal_address(temporal_server: TemporalServer) -> str:
    return temporal_server.address


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_client(temporal_address: str) -> Client:
    return await connect_temporal(temporal_address)


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DATABASE_URL when set, else an embedded PostgreSQL (pgserver) for the session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with embedded_postgres(tmp_path_factory.mktemp("pg") / "data") as url:
        yield url


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest_asyncio.fixture(loop_scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database per test, dropped afterwards."""
    name = f"tindexer_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(postgres_admin_url, name)
    finally:
        async with teardown_step(f"dropping database {name}"):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


@pytest_asyncio.fixture(loop_scope="session")
async def harness(database_url: str, temporal_client: Client) -> AsyncIterator[Harness]:
    """A pool on the test's database, the session's client, a fresh task queue."""
    pool = await create_pool(database_url, max_size=20)
    harness = Harness(pool, temporal_client)
    try:
        yield harness
    finally:
        async with teardown_step("terminating the test's workflows"):
            await harness.terminate_chain_workflows()
        await close_pool(pool)


@pytest.fixture
def sim_chain(tmp_path: Path) -> Iterator[SimChainFactory]:
    """Start simulated chains as real child processes: `url = sim_chain(backlog=1000, ...)`."""
    with contextlib.ExitStack() as stack:
        yield SimChainFactory(stack, tmp_path)


class SimChainFactory:
    def __init__(self, stack: contextlib.ExitStack, tmp_path: Path) -> None:
        self.stack = stack
        self.tmp_path = tmp_path

    def __call__(self, **options: object) -> str:
        port = free_port()
        options.setdefault("block_time", 0)
        args = sim_chain_args(port, **options)
        self.stack.enter_context(
            child_process(args, "127.0.0.1", port, log_path=self.tmp_path / f"sim-{port}.log")
        )
        return f"http://127.0.0.1:{port}"


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[str]:
    """A real anvil node (npm @foundry-rs/anvil) on a free port."""
    if not ANVIL.exists():
        pytest.fail(f"anvil is not installed at {ANVIL}: run `make install`")
    port = free_port()
    args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    with child_process(args, "127.0.0.1", port, log_path=tmp_path / "anvil.log"):
        yield f"http://127.0.0.1:{port}"
