"""What runs on each host of a test cluster: PostgreSQL and the Temporal dev server on `core`,
the simulated chain on `chain`, `tindexer worker` on worker hosts, the admin API on `api`.

Every process binds to its host's address and is started with `ip netns exec`, so nothing
reaches it but through the bridge. Ports are the defaults: each host has its own.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from indexer.embedded import sim_chain_args, temporal_dev_server_args, wait_for_port
from tests.support.cluster import Cluster, Host
from tests.support.workers import WorkerProcess

POSTGRES_PORT = 5432
TEMPORAL_PORT = 7233
CHAIN_PORT = 8545
API_PORT = 8088
METRICS_PORT = 9464
# PostgreSQL refuses to run as root; pgserver runs it as this user when started by root.
POSTGRES_USER = "pgserver"
START_TIMEOUT = 60.0


@dataclass
class Core:
    """The core host: PostgreSQL on its first address, Temporal on its second, so a route can
    cut a host off from one without the other (there is no per-port filter here)."""

    host: Host
    postgres_url: str  # the admin database; tests create their own beside it
    temporal_address: str

    @property
    def postgres_address(self) -> str:
        return self.host.addresses[0]

    @property
    def temporal_host(self) -> str:
        return self.host.addresses[1]


def _postgres_bin() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[attr-defined]

    return Path(POSTGRES_BIN_PATH)


def _init_postgres(data_dir: Path, trusted: str) -> None:
    """initdb as POSTGRES_USER (the way pgserver does as root), trusting the cluster's subnet."""
    import pwd

    from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(POSTGRES_USER)
    data_dir.mkdir(parents=True)
    ensure_prefix_permissions(data_dir)
    for folder in (_postgres_bin(), _postgres_bin().parent / "lib"):  # as pgserver does
        folder.chmod(folder.stat().st_mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH)
    user = pwd.getpwnam(POSTGRES_USER)
    os.chown(data_dir, user.pw_uid, user.pw_gid)
    initdb = [str(_postgres_bin() / "initdb"), "-D", str(data_dir), "--auth=trust"]
    initdb += ["--encoding=utf8", "-U", "postgres"]
    subprocess.run(initdb, check=True, capture_output=True, user=POSTGRES_USER, timeout=120)
    with open(data_dir / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {trusted} trust\n")


def start_core(cluster: Cluster, data_dir: Path) -> Core:
    """The core host with PostgreSQL and an in-memory Temporal dev server, both listening."""
    host = cluster.add_host("core", addresses=2)
    postgres_address, temporal_host = host.addresses
    _init_postgres(data_dir, str(cluster.subnet))
    postgres = [str(_postgres_bin() / "postgres"), "-D", str(data_dir)]
    postgres += ["-h", postgres_address, "-p", str(POSTGRES_PORT), "-k", ""]
    # A test database: durability across a crash of the machine is not what is tested here.
    postgres += ["-c", "fsync=off", "-c", "max_connections=300"]
    as_user = ["setpriv", f"--reuid={POSTGRES_USER}", f"--regid={POSTGRES_USER}", "--init-groups"]
    pg = cluster.spawn(host, [*as_user, *postgres], "postgres.log")
    # The dev server's own services dial each other on 127.0.0.1 whatever `--ip` says (it has
    # no broadcast address knob; `--ip 10.x.y.z` alone fails every call), so it listens on all
    # of the core host's addresses: its loopback and its two, never this machine's. Clients
    # are given `temporal_host`, and a route to that address cuts them off.
    temporal = cluster.spawn(
        host, temporal_dev_server_args(TEMPORAL_PORT, host="0.0.0.0"), "temporal.log"
    )
    wait_for_port(postgres_address, POSTGRES_PORT, START_TIMEOUT, pg)
    wait_for_port(temporal_host, TEMPORAL_PORT, START_TIMEOUT, temporal)
    return Core(
        host,
        f"postgresql://postgres@{postgres_address}:{POSTGRES_PORT}/postgres",
        f"{temporal_host}:{TEMPORAL_PORT}",
    )


def start_sim_chain(cluster: Cluster, **options: object) -> str:
    """The chain host serving the simulated chain; its URL."""
    host = cluster.add_host("chain")
    process = cluster.spawn(
        host, sim_chain_args(CHAIN_PORT, host.address, **options), "sim-chain.log"
    )
    wait_for_port(host.address, CHAIN_PORT, START_TIMEOUT, process)
    return f"http://{host.address}:{CHAIN_PORT}"


def start_worker(
    cluster: Cluster,
    role: str,
    task_queue: str,
    database_url: str,
    temporal_address: str,
    max_concurrent_activities: int,
) -> tuple[Host, WorkerProcess]:
    """A worker host running one `tindexer worker`, /metrics on its own address."""
    host = cluster.add_host(role)
    config = cluster.log_dir / f"{role}.toml"
    config.write_text(
        f'task_queue = "{task_queue}"\nmetrics_host = "{host.address}"\n'
        f"metrics_port = {METRICS_PORT}\n"
    )
    args = [sys.executable, "-m", "indexer.cli", "worker", "--config", str(config)]
    args += ["--max-concurrent-activities", str(max_concurrent_activities)]
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
    env.pop("TINDEXER_CONFIG", None)
    worker = WorkerProcess(
        host.command(args), env, cluster.log_dir / f"{role}.log", METRICS_PORT, host.address
    )
    host.processes.append(worker.process)
    return host, worker


async def start_api(
    cluster: Cluster,
    database_url: str,
    temporal_address: str,
    token: str,
    task_queue: str,
    serve_metrics: bool = False,
) -> tuple[Host, str]:
    """The api host running `tindexer api`; its base URL once it listens. With
    `serve_metrics`, its own /metrics too, on its address and METRICS_PORT."""
    host = cluster.add_host("api")
    config = cluster.log_dir / "api.toml"
    config.write_text(f'task_queue = "{task_queue}"\nmetrics_host = "{host.address}"\n')
    args = [sys.executable, "-m", "indexer.cli", "api", "--config", str(config)]
    args += ["--host", host.address, "--port", str(API_PORT)]
    args += ["--metrics-port", str(METRICS_PORT)] if serve_metrics else []
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "TINDEXER_API_TOKEN": token,
    }
    env.pop("TINDEXER_CONFIG", None)
    process = cluster.spawn(host, args, "api.log", env)
    await asyncio.to_thread(wait_for_port, host.address, API_PORT, START_TIMEOUT, process)
    return host, f"http://{host.address}:{API_PORT}"


ANVIL = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"  # make install


def start_anvil(cluster: Cluster) -> str:
    """An `anvil` host serving a real EVM node on its own address; its URL."""
    host = cluster.add_host("anvil")
    args = [str(ANVIL), "--host", host.address, "--port", str(CHAIN_PORT), "--silent"]
    process = cluster.spawn(host, args, "anvil.log")
    wait_for_port(host.address, CHAIN_PORT, START_TIMEOUT, process)
    return f"http://{host.address}:{CHAIN_PORT}"
