"""Fixtures of the cluster suite: hosts as network namespaces on a private bridge.

One cluster per module: a `core` host (PostgreSQL and the Temporal dev server, each on an
address of its own) and a `chain` host (the simulated chain). Each test gets a fresh database
on `core`, a fresh task queue, and its own worker and API hosts, removed when it ends. Figures
the tests measure are printed after the test results.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client

from indexer.lifecycle import close_pool
from indexer.store.db import create_pool
from indexer.temporal_client import connect_temporal
from tests.support.cluster import cluster, namespaces_refused
from tests.support.cluster_hosts import start_core, start_sim_chain
from tests.support.cluster_site import BACKLOG, FIGURES, Network, Site
from tests.support.harness import Harness
from tests.support.waiting import teardown_step


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    reason = namespaces_refused()
    if reason:
        pytest.skip(f"cluster tests need network namespaces: {reason}")
    log_dir = tmp_path_factory.mktemp("cluster")
    with cluster(log_dir) as made:
        core = start_core(made, log_dir / "pgdata")
        chain_url = start_sim_chain(made, backlog=BACKLOG, block_time=0)
        yield Network(made, core, chain_url)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster_client(network: Network) -> Client:
    """The test process's Temporal client, through the bridge."""
    return await connect_temporal(network.core.temporal_address)


@pytest_asyncio.fixture(loop_scope="session")
async def site(network: Network, cluster_client: Client) -> AsyncIterator[Site]:
    """A fresh database on core, a harness on it; the test's hosts are removed afterwards."""
    name = f"tindexer_cluster_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(network.core.postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{network.core.postgres_url.rsplit('/', 1)[0]}/{name}"
    pool = await create_pool(database_url, max_size=10)
    made = Site(network, Harness(pool, cluster_client), database_url)
    try:
        yield made
    finally:
        for host in made.hosts:
            network.cluster.remove_host(host)
        async with teardown_step("terminating the test's workflows"):
            await made.harness.terminate_chain_workflows()
        async with teardown_step(f"dropping database {name}"):
            await close_pool(pool)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the cluster tests measured, after the test results."""
    if FIGURES:
        terminalreporter.section("cluster faults")
        for line in FIGURES:
            terminalreporter.write_line(line)
