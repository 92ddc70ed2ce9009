"""`tindexer worker` child processes for the fault suite, and reading their /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from indexer.embedded import die_with_parent, free_port

# (name, labels) -> value, as one scrape of /metrics returned them.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def sample_sum(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def metrics_text(host: str, port: int) -> str:
    """One scrape of http://host:port/metrics, given 5 s."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://{host}:{port}/metrics") as response,
    ):
        return await response.text()


class WorkerProcess:
    """One `tindexer worker` child polling a task queue, with /metrics on its own port."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log_path: Path,
        port: int,
        metrics_host: str = "127.0.0.1",
    ) -> None:
        self.metrics_host = metrics_host
        self.metrics_port = port
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            args,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait until /metrics answers: the pool and client are up and the worker polls next."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}: {self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await self.scrape_once()
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"worker not ready within {timeout}s: {self.tail()}")

    async def scrape(self) -> Samples:
        """Its /metrics; if they do not answer, an error with its exit status and its log."""
        try:
            return await self.scrape_once()
        except (aiohttp.ClientError, OSError) as exc:
            status = self.process.poll()
            state = "running" if status is None else f"exited with {status}"
            raise AssertionError(f"worker /metrics: {exc!r}; {state}:\n{self.tail()}") from exc

    async def scrape_once(self) -> Samples:
        return parse_samples(await metrics_text(self.metrics_host, self.metrics_port))

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    async def terminate(self, timeout: float) -> float:
        """SIGTERM, then wait (without blocking the loop) for the exit; seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        while self.process.poll() is None:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"worker still running {timeout}s after SIGTERM")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class WorkerProcesses:
    """Starts `tindexer worker` children; every one is killed when the test ends."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[WorkerProcess] = []

    def start(
        self,
        task_queue: str,
        database_url: str,
        temporal_address: str,
        max_concurrent_activities: int = 32,
        pollers: int = 5,
        options: tuple[str, ...] = (),
    ) -> WorkerProcess:
        n = len(self.started)
        config = self.tmp_path / f"worker-{n}.toml"
        config.write_text(f'task_queue = "{task_queue}"\n')
        port = free_port()
        args = [sys.executable, "-m", "indexer.cli", "worker", "--config", str(config)]
        args += ["--metrics-port", str(port)]
        args += ["--max-concurrent-activities", str(max_concurrent_activities)]
        args += ["--pollers", str(pollers), *options]
        env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
        env.pop("TINDEXER_CONFIG", None)
        worker = WorkerProcess(args, env, self.tmp_path / f"worker-{n}.log", port)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
