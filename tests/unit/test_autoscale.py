"""The autoscaler's rule, and the worker pool's start/drain/kill on real (tiny) processes."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.autoscale import Autoscaler, clamp, raw_replicas
from indexer.supervisor import FIXED, Supervisor, SupervisorOptions, WorkerPool
from tests.support.waiting import wait_until_sync


@pytest.mark.parametrize(
    ("backlog", "per_replica", "expected"),
    [(0, 100, 0), (1, 100, 1), (100, 100, 1), (101, 100, 2), (750_000, 50_000, 15), (-5, 10, 0)],
)
def test_raw_replicas_is_the_ceiling_of_backlog_over_target(
    backlog: int, per_replica: int, expected: int
) -> None:
    assert raw_replicas(backlog, per_replica) == expected


def test_raw_replicas_needs_a_positive_target() -> None:
    with pytest.raises(ValueError, match="blocks_per_replica"):
        raw_replicas(10, 0)


def test_clamp() -> None:
    assert [clamp(v, 2, 5) for v in (0, 2, 3, 5, 9)] == [2, 2, 3, 5, 5]


def test_bounds_apply_to_every_recommendation() -> None:
    scaler = Autoscaler(blocks_per_replica=1_000, scale_down_window_seconds=0)
    assert scaler.recommend("a", 12_000, 1, 3, now=0).desired == 3
    # The PATCH of the old bug: a new max is honoured on the very next evaluation.
    assert scaler.recommend("a", 12_000, 1, 9, now=1).desired == 9
    assert scaler.recommend("a", 12_000, 1, 20, now=2).desired == 12
    assert scaler.recommend("a", 0, 4, 20, now=3).desired == 4
    rec = scaler.recommend("a", 2_500, 0, 20, now=4)
    assert (rec.backlog, rec.raw, rec.desired, rec.min_replicas, rec.max_replicas) == (
        2_500,
        3,
        3,
        0,
        20,
    )


def test_scale_up_is_immediate_and_scale_down_waits_for_the_window() -> None:
    scaler = Autoscaler(blocks_per_replica=100, scale_down_window_seconds=10)
    desired = [
        scaler.recommend("a", backlog, 1, 50, now=t).desired
        for t, backlog in [(0, 500), (1, 2_000), (2, 100), (5, 0), (11, 0), (12, 0), (13, 300)]
    ]
    # 5 -> 20 at once; 20 stays until t=1 leaves the window (t > 11); then min 1; up again.
    assert desired == [5, 20, 20, 20, 20, 1, 3]


def test_a_lowered_max_cuts_at_once_despite_the_window() -> None:
    scaler = Autoscaler(blocks_per_replica=100, scale_down_window_seconds=300)
    assert scaler.recommend("a", 2_000, 1, 20, now=0).desired == 20
    assert scaler.recommend("a", 2_000, 1, 4, now=1).desired == 4


def test_chains_are_independent_and_forgotten() -> None:
    scaler = Autoscaler(blocks_per_replica=100, scale_down_window_seconds=300)
    assert scaler.recommend("a", 1_000, 0, 50, now=0).desired == 10
    assert scaler.recommend("b", 100, 0, 50, now=0).desired == 1
    scaler.forget({"b"})
    assert scaler.recommend("a", 0, 0, 50, now=1).desired == 0


# A stand-in worker: exits 0 on SIGTERM after a short "drain", like `tindexer worker` (which
# also unblocks SIGTERM once its handler is set: the pool starts workers with it blocked).
DRAINS = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.2), sys.exit(0)))\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})\n"
    "print('up', flush=True)\n"
    "while True: time.sleep(1)\n"
)
IGNORES_SIGTERM = (
    "import signal, time\nsignal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})\n"
)
IGNORES_SIGTERM += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
IGNORES_SIGTERM += "print('up', flush=True)\nwhile True: time.sleep(1)\n"


def started(pool: WorkerPool) -> bool:
    logs = sorted(pool.log_dir.glob("worker-*.log")) if pool.log_dir else []
    return bool(logs) and all(log.read_text().startswith("up") for log in logs)


def test_pool_starts_and_drains_newest_first(tmp_path: Path) -> None:
    pool = WorkerPool([sys.executable, "-c", DRAINS], {}, tmp_path, drain_timeout=10)
    try:
        pool.scale("a", 3)
        assert pool.current("a") == 3
        wait_until_sync(lambda: started(pool), 10, "the workers to start")
        first, second, third = pool.running["a"]
        pool.scale("a", 1)
        assert pool.running["a"] == [first]
        assert [d.process for d in pool.draining] == [third, second]
        wait_until_sync(lambda: (pool.reap(), not pool.draining)[1], 10, "the drain to end")
        assert (second.returncode, third.returncode) == (0, 0)
        assert first.poll() is None
    finally:
        asyncio.run(pool.stop_all())
    assert first.returncode == 0 and not pool.running


def test_pool_kills_a_worker_that_overruns_its_drain(tmp_path: Path) -> None:
    pool = WorkerPool([sys.executable, "-c", IGNORES_SIGTERM], {}, tmp_path, drain_timeout=0.5)
    pool.scale("a", 1)
    wait_until_sync(lambda: started(pool), 10, "the workers to start")
    [process] = pool.running["a"]
    pool.scale("a", 0)
    wait_until_sync(lambda: (pool.reap(), not pool.draining)[1], 10, "the drain to end")
    assert process.returncode == -signal.SIGKILL


def test_pool_replaces_a_crashed_worker_on_the_next_scale(tmp_path: Path) -> None:
    pool = WorkerPool([sys.executable, "-c", "raise SystemExit(3)"], {}, tmp_path, 1)
    pool.scale("a", 1)
    [crashed] = pool.running["a"]
    crashed.wait()
    pool.reap()
    assert pool.current("a") == 0
    pool.scale("a", 1)
    assert pool.current("a") == 1 and pool.running["a"][0] is not crashed
    pool.running["a"][0].wait()


def test_worker_metrics_ports_are_slots_reused_after_a_stop(tmp_path: Path) -> None:
    script = "import signal, sys, time\nprint(sys.argv[-1], flush=True)\n"
    script += "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})\ntime.sleep(30)\n"
    pool = WorkerPool([sys.executable, "-c", script], {}, tmp_path, 5, metrics_port_base=9500)
    try:
        pool.scale("a", 2)
        pool.scale("b", 1)
        wait_until_sync(
            lambda: all(log.read_text() for log in tmp_path.glob("worker-*.log")),
            10,
            "every worker to start",
        )
        ports = sorted(log.read_text().strip() for log in tmp_path.glob("worker-*.log"))
        assert ports == ["9500", "9501", "9502"]
        pool.scale("a", 1)  # frees 9501
        wait_until_sync(lambda: (pool.reap(), not pool.draining)[1], 10, "the drain to end")
        pool.scale("b", 2)
        wait_until_sync(
            lambda: len(list(tmp_path.glob("worker-*.log"))) == 4, 10, "a fourth worker"
        )
        wait_until_sync(
            lambda: (tmp_path / "worker-4.log").read_text() != "", 10, "the fourth worker to start"
        )
        assert (tmp_path / "worker-4.log").read_text().strip() == "9501"
    finally:
        asyncio.run(pool.stop_all())


def test_a_worker_stopped_while_starting_gets_the_signal_once_ready(tmp_path: Path) -> None:
    """SIGTERM sent before the worker's handler exists waits (blocked) instead of killing it."""
    slow_start = "import time\ntime.sleep(0.5)\n" + DRAINS
    pool = WorkerPool([sys.executable, "-c", slow_start], {}, tmp_path, drain_timeout=10)
    pool.scale("a", 1)
    [process] = pool.running["a"]
    pool.scale("a", 0)  # at once: the stand-in is still "importing"
    wait_until_sync(lambda: (pool.reap(), not pool.draining)[1], 10, "the drain to end")
    assert process.returncode == 0  # its handler ran; the default action would be -15


def test_without_autoscale_the_supervisor_keeps_a_fixed_count(tmp_path: Path) -> None:
    pool = WorkerPool([sys.executable, "-c", DRAINS], {}, tmp_path, drain_timeout=10)
    options = SupervisorOptions(autoscale=False, replicas=2)
    supervisor = Supervisor(None, options, pool, Metrics(CollectorRegistry()))  # type: ignore[arg-type]
    try:
        asyncio.run(supervisor.tick())
        assert pool.current(FIXED) == 2
        [first, _] = pool.running[FIXED]
        first.kill()
        first.wait()
        asyncio.run(supervisor.tick())  # the crashed one is replaced
        assert pool.current(FIXED) == 2 and first not in pool.running[FIXED]
    finally:
        asyncio.run(pool.stop_all())
