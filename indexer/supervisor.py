"""`tindexer workers`: run real `tindexer worker` processes, as many as the autoscaler says.

Every `interval` the supervisor reads each chain's config and backlog from PostgreSQL (so a
PATCH is seen on the next tick), asks the autoscaler for the chain's replicas, and starts or
stops worker processes to match. A scaled-down worker gets SIGTERM and drains its in-flight
activities (`tindexer worker` stops polling, finishes, exits); one that outlives the drain
timeout is killed. Workers all poll the same task queue; each is counted against the chain
whose backlog asked for it, so the per-chain metrics add up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg

from exporter.metrics import Metrics
from indexer.autoscale import Autoscaler, Recommendation
from indexer.progress import chain_statuses
from indexer.services import start_worker, worker_command
from indexer.store.chains import list_chains

log = logging.getLogger("indexer.supervisor")

DRAIN_TIMEOUT_SECONDS = 30.0  # the worker drains for up to 20 s (worker.DRAIN_TIMEOUT), plus exit
FIXED = "*"  # the pool key of workers run without autoscaling


@dataclass
class SupervisorOptions:
    autoscale: bool = True
    replicas: int = 1  # without autoscaling: this many, always
    blocks_per_replica: int = 50_000
    scale_down_window_seconds: float = 300.0
    interval_seconds: float = 5.0
    recommend_only: bool = False  # compute and export desired replicas; start nothing (KEDA)
    worker_args: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    drain_timeout_seconds: float = DRAIN_TIMEOUT_SECONDS
    # Worker n serves /metrics on base + n (n from 0, reused); 0 lets the OS pick each port.
    worker_metrics_port_base: int | None = None


@dataclass
class Draining:
    process: subprocess.Popen[bytes]
    chain: str
    deadline: float


class WorkerPool:
    """Worker processes per chain: start, stop newest first with a graceful drain, reap."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        log_dir: Path | None,
        drain_timeout: float,
        metrics_port_base: int | None = None,
    ) -> None:
        self.command = command
        self.env = env
        self.log_dir = log_dir
        self.drain_timeout = drain_timeout
        self.metrics_port_base = metrics_port_base
        self.running: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.draining: list[Draining] = []
        self._logs: dict[int, IO[bytes]] = {}
        self._slots: dict[int, int] = {}  # pid -> slot, for the worker's metrics port
        self._started = 0

    def current(self, chain: str) -> int:
        return len(self.running.get(chain, []))

    def _free_slot(self) -> int:
        taken = set(self._slots.values())
        return next(slot for slot in range(len(taken) + 1) if slot not in taken)

    def _start(self, chain: str) -> subprocess.Popen[bytes]:
        self._started += 1
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"worker-{self._started}.log", "ab")  # noqa: SIM115
        slot = self._free_slot()
        command = list(self.command)
        if self.metrics_port_base is not None:
            port = self.metrics_port_base + slot if self.metrics_port_base else 0
            command += ["--metrics-port", str(port)]
        process = start_worker(command, self.env, output)
        if output is not None:
            self._logs[process.pid] = output
        self._slots[process.pid] = slot
        log.info("started worker pid=%d for chain=%s", process.pid, chain)
        return process

    def scale(self, chain: str, count: int) -> None:
        """Run exactly `count` workers for `chain`: start the missing, drain the newest extra."""
        processes = self.running.setdefault(chain, [])
        while len(processes) < count:
            processes.append(self._start(chain))
        while len(processes) > count:
            process = processes.pop()
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.drain_timeout
            self.draining.append(Draining(process, chain, deadline))
            log.info("draining worker pid=%d of chain=%s", process.pid, chain)
        if not processes:
            del self.running[chain]

    def reap(self) -> None:
        """Forget exited workers (a crashed one is replaced on next scale); kill overrun drains."""
        for chain, processes in self.running.items():
            for process in [p for p in processes if p.poll() is not None]:
                processes.remove(process)
                self._close_log(process)
                log.warning(
                    "worker pid=%d of chain=%s exited unasked with code %s",
                    process.pid,
                    chain,
                    process.returncode,
                )
        now = time.monotonic()
        for drain in list(self.draining):
            code = drain.process.poll()
            if code is None and now > drain.deadline:
                log.warning("worker pid=%d overran its drain: killed", drain.process.pid)
                drain.process.kill()
                code = drain.process.wait()
            if code is not None:
                self.draining.remove(drain)
                self._close_log(drain.process)
                log.info(
                    "worker pid=%d of chain=%s stopped after drain, exit code %d",
                    drain.process.pid,
                    drain.chain,
                    code,
                )

    def _close_log(self, process: subprocess.Popen[bytes]) -> None:
        self._slots.pop(process.pid, None)
        output = self._logs.pop(process.pid, None)
        if output is not None:
            output.close()

    async def stop_all(self) -> None:
        for chain in list(self.running):
            self.scale(chain, 0)
        while self.draining:
            self.reap()
            await asyncio.sleep(0.1)


class Supervisor:
    """The reconcile loop: chains and backlogs from PostgreSQL, replicas from the autoscaler."""

    def __init__(
        self,
        db: asyncpg.Pool,
        options: SupervisorOptions,
        workers: WorkerPool | None,
        metrics: Metrics,
    ) -> None:
        self.db = db
        self.options = options
        self.workers = workers
        self.metrics = metrics
        self.autoscaler = Autoscaler(options.blocks_per_replica, options.scale_down_window_seconds)
        self.ticks = 0
        self._chains: set[str] = set()

    async def recommendations(self) -> list[Recommendation]:
        now = time.monotonic()
        result = []
        rows = await list_chains(self.db)
        for row, status in zip(rows, await chain_statuses(self.db, rows), strict=True):
            config = row.config
            result.append(
                self.autoscaler.recommend(
                    config.name,
                    status.missing_blocks,
                    config.min_replicas,
                    config.max_replicas,
                    now,
                )
            )
        return result

    def _export(self, rec: Recommendation, current: int) -> None:
        self.metrics.replicas_desired.labels(rec.chain).set(rec.desired)
        self.metrics.replicas_current.labels(rec.chain).set(current)
        self.metrics.replicas_min.labels(rec.chain).set(rec.min_replicas)
        self.metrics.replicas_max.labels(rec.chain).set(rec.max_replicas)

    async def tick(self) -> None:
        """One reconcile: read, decide, start/stop, export, and log one line per chain."""
        self.ticks += 1
        if self.workers is not None:
            self.workers.reap()
        if not self.options.autoscale:
            assert self.workers is not None
            self.workers.scale(FIXED, self.options.replicas)
            log.info("reconcile %d: fixed replicas=%d", self.ticks, self.options.replicas)
            return
        recs = await self.recommendations()
        seen = {rec.chain for rec in recs}
        for gone in self._chains - seen:
            if self.workers is not None:
                self.workers.scale(gone, 0)
            self.metrics.forget_chain(gone)  # its replica gauges, as workers forget theirs
        self.autoscaler.forget(seen)
        self._chains = seen
        for rec in recs:
            if self.workers is not None:
                self.workers.scale(rec.chain, rec.desired)
                current = self.workers.current(rec.chain)
            else:
                current = rec.desired
            self._export(rec, current)
            log.info(
                "reconcile %d: chain=%s backlog=%d raw=%d min=%d max=%d desired=%d current=%d",
                self.ticks,
                rec.chain,
                rec.backlog,
                rec.raw,
                rec.min_replicas,
                rec.max_replicas,
                rec.desired,
                current,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every interval until `stop`; then drain every worker."""
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    # Keep the workers we have; decide again when PostgreSQL answers.
                    log.warning("reconcile %d failed: %s", self.ticks, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.options.interval_seconds)
        finally:
            if self.workers is not None:
                await self.workers.stop_all()


async def run_supervisor(
    database_url: str,
    temporal_address: str,
    options: SupervisorOptions,
    metrics: Metrics,
) -> None:
    """`tindexer workers`: supervise until SIGTERM or SIGINT, then drain every worker."""
    from indexer.store.db import create_pool

    db = await create_pool(database_url, min_size=1, max_size=2)
    workers = None
    if not options.recommend_only:
        env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
        workers = WorkerPool(
            worker_command(*options.worker_args),
            env,
            options.log_dir,
            options.drain_timeout_seconds,
            options.worker_metrics_port_base,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Supervisor(db, options, workers, metrics).run(stop)
    finally:
        await db.close()
