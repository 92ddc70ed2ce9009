"""Record the histories test_replay.py replays, from a real indexing run.

    PYTHONPATH=. .venv/bin/python -m tests.support.replay_recorder [--name NAME]

Starts a Temporal dev server, the simulated chain and PostgreSQL (DATABASE_URL, else an embedded
one; a fresh database either way), indexes a small chain with knobs small enough that every path
of the workflows runs within seconds, then writes the histories to tests/replay/histories/ and
what they hold to tests/replay/manifest.json; with --name, to tests/replay/histories/NAME/ and
its own manifest there, as a recording added beside the others (replay_corpus). Everything it
starts is stopped, even on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import temporalio
from prometheus_client import CollectorRegistry
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory

from exporter.metrics import Metrics
from exporter.tracing import configure_tracing
from indexer.config import ChainConfig
from indexer.embedded import (
    child_process,
    embedded_postgres,
    free_port,
    sim_chain_args,
    temporal_binary,
    temporal_dev_server_args,
)
from indexer.store.chains import upsert_chain
from indexer.store.db import create_pool
from indexer.temporal_client import connect_temporal, start_head_scan
from indexer.worker import running_worker
from tests.support.replay_corpus import (
    HISTORIES,
    MANIFEST,
    MANIFEST_NAME,
    Recorded,
    commands,
    coverage_gaps,
    load,
)

CHAIN = "replay"  # fixed, so workflow IDs (and so history diffs) are stable across recordings
TASK_QUEUE = "replay"
BACKLOG = 200  # blocks 0..199 exist when the chain starts; one more every BLOCK_TIME seconds
BLOCK_TIME = 1.0  # new blocks make later scans schedule the live edge directly
LATENCY = 0.2  # seconds per RPC request: a range takes longer than a Scheduler tick
# The first scan sends blocks 150..199 direct (5 ranges) and 0..149 (15 ranges) to the
# Scheduler, which starts at most 2 at a time, waits while 2 are unfinished, and continues as
# new after 6: runs of 6, 6 and 3 ranges.
KNOBS = {
    "blocks_per_workflow": 10,
    "catchup_threshold": 50,
    "scheduler_batch_size": 3,
    "max_inflight_ranges": 2,
    "continue_as_new_threshold": 6,
    "head_poll_interval_seconds": 1.0,
    "parallelism": 2,
}
SCANS_AFTER_SCHEDULER = 3  # HeadScan scans that run once the Scheduler is done, live edge only
# The server suggests continuing as new this early, so HeadScan and the Scheduler take that path
# within the recording (the server's default is 4,096 events).
SUGGEST_CONTINUE_AS_NEW_EVENTS = 60
INDEX_RANGES = ("0-9", "190-199")  # one range the Scheduler started, one HeadScan started
PATIENCE_SECONDS = 120.0
RECORDER = ["tests/support/replay_recorder.py", "tests/support/replay_corpus.py"]


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[tuple[str, str, str]]:
    """Temporal, the simulated chain and an admin PostgreSQL URL; all stopped on exit."""
    with contextlib.ExitStack() as stack:
        temporal_port, sim_port = free_port(), free_port()
        stack.enter_context(
            child_process(
                temporal_dev_server_args(
                    temporal_port,
                    dynamic_config={
                        "limit.historyCount.suggestContinueAsNew": str(
                            SUGGEST_CONTINUE_AS_NEW_EVENTS
                        )
                    },
                ),
                "127.0.0.1",
                temporal_port,
                log_path=workdir / "temporal.log",
            )
        )
        stack.enter_context(
            child_process(
                sim_chain_args(
                    sim_port,
                    backlog=BACKLOG,
                    block_time=BLOCK_TIME,
                    latency_seconds=LATENCY,
                    txs_per_block=1,
                ),
                "127.0.0.1",
                sim_port,
                log_path=workdir / "sim-chain.log",
            )
        )
        postgres = os.environ.get("DATABASE_URL") or stack.enter_context(
            embedded_postgres(workdir / "pg")
        )
        yield f"127.0.0.1:{temporal_port}", f"http://127.0.0.1:{sim_port}", postgres


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {PATIENCE_SECONDS}s waiting for {what}")
        await asyncio.sleep(0.5)


async def runs(
    client: Client, workflow_id: str
) -> list[tuple[str, WorkflowExecutionStatus | None]]:
    """(run ID, status) of every run of the workflow ID, oldest first."""
    found = [
        (execution.start_time, execution.run_id, execution.status)
        async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'")
    ]
    return [(run_id, status) for _, run_id, status in sorted(found)]


async def completed_scans(client: Client) -> int:
    """Scans of every HeadScan run so far (each ends in a fired timer)."""
    scans = 0
    for run_id, _ in await runs(client, f"headscan:{CHAIN}"):
        history = await fetch(client, f"headscan:{CHAIN}", run_id)
        scans += sum(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in history.events)
    return scans


async def index_and_fetch(temporal_address: str, database_url: str, rpc_url: str) -> list[Recorded]:
    """Index the chain with the real worker until every path ran; return the histories."""
    client = await connect_temporal(temporal_address)  # traced, as the real worker's client
    pool = await create_pool(database_url)
    try:
        await upsert_chain(pool, ChainConfig(name=CHAIN, rpc_url=rpc_url, **KNOBS))
        metrics = Metrics(CollectorRegistry())
        async with running_worker(client, pool, TASK_QUEUE, metrics=metrics):
            await start_head_scan(client, CHAIN, TASK_QUEUE)

            async def scheduler_done() -> bool:
                scheduler = await runs(client, f"scheduler:{CHAIN}")
                return bool(scheduler) and scheduler[-1][1] == WorkflowExecutionStatus.COMPLETED

            await wait_until(scheduler_done, "the Scheduler to start the whole backlog")
            scans = await completed_scans(client) + SCANS_AFTER_SCHEDULER

            async def scanned() -> bool:
                return await completed_scans(client) >= scans

            await wait_until(scanned, f"{SCANS_AFTER_SCHEDULER} more scans")
            # Terminated, the history is final: it ends in a timer like any long-running scan.
            await client.get_workflow_handle(f"headscan:{CHAIN}").terminate("recorded")
        recorded = []
        for kind in ("headscan", "scheduler"):
            for number, (run_id, _) in enumerate(await runs(client, f"{kind}:{CHAIN}"), start=1):
                history = await fetch(client, f"{kind}:{CHAIN}", run_id)
                recorded.append(Recorded(f"{kind}-run{number}.json", history))
        for blocks in INDEX_RANGES:
            history = await fetch(client, f"index:{CHAIN}:{blocks}")
            recorded.append(Recorded(f"index_range-{blocks}.json", history))
        return recorded
    finally:
        await pool.close()


async def fetch(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowHistory:
    return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


async def record(temporal_address: str, admin_url: str, rpc_url: str) -> list[Recorded]:
    """Index into a fresh database, dropped afterwards."""
    database = f"tindexer_replay_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        return await index_and_fetch(temporal_address, with_database(admin_url, database), rpc_url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def source_commit() -> str:
    """HEAD, marked `-dirty` when the working tree has changes."""
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--", "indexer", "exporter", *RECORDER],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{head}-dirty" if dirty else head


def write(recorded: list[Recorded], name: str | None) -> None:
    """Replace the first recording, or the one called `name`; the others stay. Together they
    must take every path (replay_corpus.coverage_gaps), or nothing is written."""
    directory = HISTORIES / name if name else HISTORIES
    manifest_path = directory / MANIFEST_NAME if name else MANIFEST
    gaps = coverage_gaps(load(skip=directory) + recorded)
    if gaps:
        raise RuntimeError(f"the recording missed paths, so nothing was written: {gaps}")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        if stale != manifest_path:
            stale.unlink()
    for item in recorded:
        (directory / item.file).write_text(item.history.to_json() + "\n")
    entries = [
        {
            "file": item.file,
            "workflow_id": item.history.workflow_id,
            "run_id": item.history.run_id,
            "workflow_type": item.workflow_type,
            "events": len(item.history.events),
            "commands": commands(item.history),
        }
        for item in recorded
    ]
    server = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True)
    manifest = {
        "recorded_by": "python -m tests.support.replay_recorder",
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_commit": source_commit(),
        "temporalio": temporalio.__version__,
        "temporal_cli": server.stdout.strip(),
        "suggest_continue_as_new_events": SUGGEST_CONTINUE_AS_NEW_EVENTS,
        "chain": {
            "backlog": BACKLOG,
            "block_time": BLOCK_TIME,
            "latency_seconds": LATENCY,
            "knobs": KNOBS,
        },
        "histories": entries,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    for entry in entries:
        print(f"{entry['file']}: {entry['events']} events, {entry['commands']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--name", help="add (or replace) the recording histories/NAME/; the others stay"
    )
    name = parser.parse_args().name
    configure_tracing("tindexer-replay-recorder")  # trace headers in the history, as in production
    try:
        with tempfile.TemporaryDirectory(prefix="replay-record-") as workdir:
            with services(Path(workdir)) as (temporal_address, rpc_url, admin_url):
                recorded = asyncio.run(record(temporal_address, admin_url, rpc_url))
            write(recorded, name)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    # Every service is stopped and every worker shut down by now; skip interpreter teardown,
    # where the Temporal SDK's runtime can segfault (DESIGN.md, "Known SDK wart").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
