"""Issue 4, item 1, on real processes: the replica bug scenario, end to end.

`tindexer api` and `tindexer workers --autoscale` run as child processes; the supervisor
starts real `tindexer worker` processes on the test's task queue. A chain with max 3 and a
large backlog runs 3; PATCH max 9 makes it run more on the next reconcile; an invalid PATCH
changes nothing; once the backlog is indexed, the workers drain back to min_replicas.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

from indexer.embedded import child_process, free_port
from indexer.store.chains import set_head
from tests.support.api import (
    ApiClient,
    api_process,
    cli_env,
    settings_file,
)
from tests.support.harness import Harness
from tests.support.waiting import wait_until

INTERVAL = 1.0  # the supervisor's reconcile interval in this test (default 5 s)
WINDOW = 3.0  # scale-down stabilisation window (default 300 s)
BLOCKS_PER_REPLICA = 500
TICK = re.compile(
    r"reconcile (\d+): chain=(\S+) backlog=(\d+) raw=(\d+) min=(\d+) max=(\d+)"
    r" desired=(\d+) current=(\d+)"
)


class Supervisor:
    """What the test can see of the supervisor: its metrics, its log, its child processes."""

    def __init__(self, pid: int, metrics_url: str, log: Path, chain: str) -> None:
        self.process = psutil.Process(pid)
        self.metrics_url = metrics_url
        self.log = log
        self.chain = chain

    async def metrics(self) -> dict[str, float]:
        async with aiohttp.ClientSession() as session, session.get(self.metrics_url) as response:
            text = await response.text()
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("tindexer_replicas_") and (
                    sample.labels.get("chain") == self.chain
                ):
                    values[sample.name.removeprefix("tindexer_replicas_")] = sample.value
        return values

    def workers(self) -> list[psutil.Process]:
        """Live `tindexer worker` children, draining ones included."""
        alive = []
        for child in self.process.children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "worker" in child.cmdline():
                    alive.append(child)
            except psutil.NoSuchProcess:
                continue
        return alive

    def ticks(self) -> list[dict[str, int]]:
        fields = ("tick", "backlog", "raw", "min", "max", "desired", "current")
        result = []
        for match in TICK.finditer(self.log.read_text()):
            if match.group(2) == self.chain:
                numbers = [int(match.group(i)) for i in (1, 3, 4, 5, 6, 7, 8)]
                result.append(dict(zip(fields, numbers, strict=True)))
        return result


def supervisor_args(config: Path, metrics_port: int, log_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "indexer.cli",
        "workers",
        "--autoscale",
        "--config",
        str(config),
        "--interval",
        str(INTERVAL),
        "--blocks-per-replica",
        str(BLOCKS_PER_REPLICA),
        "--scale-down-window",
        str(WINDOW),
        "--metrics-port",
        str(metrics_port),
        "--max-concurrent-activities",
        "4",
        "--log-dir",
        str(log_dir),
        "--worker-metrics-port-base",
        "0",  # each worker's /metrics on a port the OS picks: no clashes on one host
    ]


@contextlib.contextmanager
def running(
    database_url: str, temporal_address: str, task_queue: str, tmp_path: Path, chain: str
) -> Iterator[Supervisor]:
    port = free_port()
    log = tmp_path / "supervisor.log"
    args = supervisor_args(settings_file(tmp_path, task_queue), port, tmp_path / "workers")
    env = cli_env(database_url, temporal_address)
    with child_process(args, "127.0.0.1", port, log_path=log, env=env) as process:
        yield Supervisor(process.pid, f"http://127.0.0.1:{port}/metrics", log, chain)


async def test_patched_max_replicas_scales_workers_and_drains_back_to_min(
    harness: Harness, sim_chain, database_url: str, temporal_address: str, tmp_path: Path
) -> None:
    head = 5_999
    url = sim_chain(backlog=head + 1, txs_per_block=1)
    row = await harness.add_chain(
        url, blocks_per_workflow=100, min_replicas=2, max_replicas=3, head_poll_interval_seconds=0.5
    )
    chain = row.config.name
    # The backlog as the first scan will find it; nothing indexes until HeadScan starts below.
    await set_head(harness.pool, row.id, head)
    backlog = head + 1
    assert -(-backlog // BLOCKS_PER_REPLICA) == 12  # the backlog asks for 12 replicas

    with contextlib.ExitStack() as stack:
        base = stack.enter_context(
            api_process(database_url, temporal_address, harness.task_queue, tmp_path)
        )
        supervisor = stack.enter_context(
            running(database_url, temporal_address, harness.task_queue, tmp_path, chain)
        )
        async with aiohttp.ClientSession() as http:
            api = ApiClient(http, base)

            async def replicas(current: int) -> bool:
                metrics = await supervisor.metrics()
                return metrics.get("current") == current and len(supervisor.workers()) == current

            # 1. max_replicas 3 caps a backlog that asks for 12.
            await wait_until(lambda: replicas(3), 60, "3 workers")
            ticks_before = len(supervisor.ticks())
            await wait_until(
                _more_ticks(supervisor, ticks_before + 2), 30, "two more reconciles at max 3"
            )
            assert {(t["desired"], t["current"]) for t in supervisor.ticks()[-2:]} == {(3, 3)}
            assert max(t["current"] for t in supervisor.ticks()) == 3

            # 2. PATCH max 9: the next reconcile runs 9 (desired = min(12, 9)).
            last_before_patch = supervisor.ticks()[-1]["tick"]
            status, body = await api.call("PATCH", f"/chains/{chain}", {"max_replicas": 9})
            assert status == 200 and body["max_replicas"] == 9
            await wait_until(lambda: replicas(9), 60, "9 workers")
            first_scaled = next(t for t in supervisor.ticks() if t["current"] > 3)
            # Tick last+1 may have read the config just before the PATCH committed; the one
            # after it certainly read it: the change lands within one reconcile interval.
            assert first_scaled["tick"] <= last_before_patch + 2
            assert (first_scaled["max"], first_scaled["desired"], first_scaled["current"]) == (
                9,
                9,
                9,
            )

            # 3. min 10 > max 9 is refused and changes nothing, stored or running.
            status, error = await api.call(
                "PATCH", f"/chains/{chain}", {"min_replicas": 10, "max_replicas": 9}
            )
            assert (status, error["field"]) == (400, "min_replicas")
            _, stored = await api.get(f"/chains/{chain}")
            assert (stored["min_replicas"], stored["max_replicas"]) == (2, 9)
            seen = len(supervisor.ticks())
            await wait_until(_more_ticks(supervisor, seen + 2), 30, "two more reconciles")
            for tick in supervisor.ticks()[seen:]:
                assert (tick["min"], tick["max"], tick["current"]) == (2, 9, 9)

            # 4. Index the backlog with those 9 workers; then they drain back to min 2.
            await harness.start(chain)
            await wait_until(lambda: _indexed(harness, row.id, [(0, head)]), 120, "backlog indexed")
            await wait_until(lambda: replicas(2), 60, "back to min_replicas")
            metrics = await supervisor.metrics()
            assert metrics == {"desired": 2.0, "current": 2.0, "min": 2.0, "max": 9.0}
            await wait_until(_more_ticks(supervisor, len(supervisor.ticks()) + 1), 30, "a reap")
            drained = re.findall(
                r"stopped after drain, exit code (-?\d+)", supervisor.log.read_text()
            )
            assert drained == ["0"] * 7
            assert "exited unasked" not in supervisor.log.read_text()
            last = supervisor.ticks()[-1]
            assert (last["backlog"], last["desired"], last["current"]) == (0, 2, 2)
    assert sorted(await harness.stored(row.id)) == list(range(backlog))


def _more_ticks(supervisor: Supervisor, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(supervisor.ticks()) >= count

    return check


async def _indexed(harness: Harness, chain_id: int, ranges: list[tuple[int, int]]) -> bool:
    return await harness.ranges(chain_id) == ranges
