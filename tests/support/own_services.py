"""A PostgreSQL or a Temporal dev server of a test's own, which the test may stop and start."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from indexer.embedded import (
    die_with_parent,
    free_port,
    stop_process,
    temporal_dev_server_args,
    wait_for_port,
)


class OwnPostgres:
    """An embedded PostgreSQL (pgserver) for one test, restarted and stopped with pg_ctl."""

    def __init__(self, url: str, data_dir: Path) -> None:
        import pgserver

        self.url = url
        self.data_dir = data_dir
        self.server = pgserver.get_server(data_dir)  # the instance embedded_postgres started
        self.socket_dir = parse_qs(urlsplit(url).query)["host"][0]

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    async def restart(self) -> None:
        """A fast restart: every connection is terminated, the server is back within a second."""
        await asyncio.to_thread(self._pg_ctl, "-w", "-m", "fast", "restart")

    async def stop(self) -> None:
        await asyncio.to_thread(self._pg_ctl, "-w", "-m", "fast", "stop")

    async def start(self) -> None:
        log = str(self.server.pgdata / "log")
        options = ["-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log]
        await asyncio.to_thread(self._pg_ctl, "-w", *options, "start")

    def stop_quietly(self) -> None:
        """After a restart pgserver no longer knows the postmaster's pid: stop it ourselves."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl("-w", "-m", "immediate", "stop")


class OwnTemporal:
    """A Temporal dev server on a SQLite file, stopped and started again on the same port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.db_file = tmp_path / "temporal.db"
        self.log_path = tmp_path / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                temporal_dev_server_args(self.port, db_file=self.db_file),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
                start_new_session=True,
            )

    async def start(self) -> None:
        self.process = process = self._spawn()
        await asyncio.to_thread(wait_for_port, "127.0.0.1", self.port, 60, process, self.log_path)

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(stop_process, self.process)
            self.process = None
