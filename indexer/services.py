"""The system's processes, built and started in one place for `up`, `loadtest` and `workers`.

`embedded.py` knows how to run a child (parent-death signal, wait for its port, stop it) and
the command lines of the servers; this module starts the system from them: PostgreSQL
(configured or embedded), the Temporal dev server, the simulated chain, an OTLP sink for
traces, and `tindexer worker` processes. Each starter is a context manager that stops what it
started, even on failure.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from indexer.embedded import (
    child_process,
    die_with_parent,
    embedded_postgres,
    sim_chain_args,
    temporal_dev_server_args,
)

HOST = "127.0.0.1"

# A trace sink that accepts OTLP/HTTP and drops it: the worker's exporter then costs what it
# costs in production, without a collector.
OTLP_SINK = """
from aiohttp import web
async def accept(request):
    await request.read()
    return web.Response(status=200)
app = web.Application(client_max_size=256 * 1024 * 1024)
app.router.add_post("/v1/traces", accept)
web.run_app(app, host="127.0.0.1", port={port}, print=None, access_log=None)
"""


@contextlib.contextmanager
def database(database_url: str | None, data_dir: Path) -> Iterator[str]:
    """The configured PostgreSQL, or an embedded one in `data_dir`; yields its URL."""
    if database_url:
        yield database_url
        return
    with embedded_postgres(data_dir) as url:
        yield url


@contextlib.contextmanager
def temporal_dev_server(
    port: int, log_path: Path, **options: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """A Temporal dev server on HOST:port; `options` go to `temporal_dev_server_args`, the one
    place its command line is built."""
    args = temporal_dev_server_args(port, **options)
    with child_process(args, HOST, port, log_path=log_path) as process:
        yield process


@contextlib.contextmanager
def sim_chain(port: int, log_path: Path, **options: object) -> Iterator[subprocess.Popen[bytes]]:
    """`tindexer sim-chain` on HOST:port, options as its `--name value` flags."""
    with child_process(
        sim_chain_args(port, HOST, **options), HOST, port, log_path=log_path
    ) as process:
        yield process


@contextlib.contextmanager
def otlp_sink(port: int, log_path: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """An OTLP/HTTP trace receiver on HOST:port that accepts and drops every export."""
    args = [sys.executable, "-c", OTLP_SINK.format(port=port)]
    with child_process(args, HOST, port, log_path=log_path) as process:
        yield process


def worker_command(*args: str) -> list[str]:
    """`tindexer worker` with `args`, run by this Python."""
    return [sys.executable, "-m", "indexer.cli", "worker", *args]


@contextlib.contextmanager
def worker(
    args: Sequence[str], metrics_port: int, log_path: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A `tindexer worker` for the duration of the block, ready once its /metrics listens."""
    with child_process(
        worker_command(*args), HOST, metrics_port, log_path=log_path, env=env
    ) as process:
        yield process


def _prepare_worker() -> None:  # runs in the child between fork and exec
    die_with_parent()
    # Held until `tindexer worker` has its handler: a worker stopped while still importing
    # then exits cleanly instead of dying of the signal's default action.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def start_worker(
    command: Sequence[str], env: dict[str, str], output: IO[bytes] | None
) -> subprocess.Popen[bytes]:
    """A supervised `tindexer worker`: the caller stops it (SIGTERM drains it) and reaps it."""
    return subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        env=env,
        preexec_fn=_prepare_worker,
    )
