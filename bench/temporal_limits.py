"""Tasks 1.3-1.4 of the old plan: a 50,000-workflow batch against the server's limits, measured.

For each set of limits, a fresh Temporal dev server as `tindexer up` runs it (SQLite with WAL
pragmas, its metrics on a port of its own) and a worker running a trivially short workflow (no
activity: one workflow task). The batch is started at the scheduler's default parallelism
(8 x CPU concurrent starts, the SDK retrying RESOURCE_EXHAUSTED as the indexer's starts do),
and the server's own metrics are read before and after: RESOURCE_EXHAUSTED by cause and
operation (`service_errors_resource_exhausted`), workflow-task schedule-to-start p99
(`task_schedule_to_start_latency`), beside starts/s and completions/s. Limits compared:

* `default`: no dynamic config, the server's own limits;
* `recommended`: deploy/temporal/dynamicconfig.yaml, what the project tells clusters to run
  (the same budget as the defaults, frontend.namespaceRPS 2400 and burst ratio 2, written down;
  plus enableCancelWorkerPollsOnShutdown);
* with `--limited-rps N`, frontend.namespaceRPS N at burst ratio 1, to see refusals counted.

On the shared 2-core machine one Python worker completes about 20 trivial workflows a second,
so 50,000 take far longer to drain than to start: the batch is started whole, its workflows
complete meanwhile, and after the last start the run waits at most `--drain-seconds` for the
rest; the result says how many completed and how many were still open.

    .venv/bin/python bench/temporal_limits.py          # or `make bench-temporal-limits`
    .venv/bin/python bench/temporal_limits.py --workflows 5000   # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families
from temporalio import workflow

from bench.common import ROOT, provenance, write_result

DYNAMIC_CONFIG = ROOT / "deploy" / "temporal" / "dynamicconfig.yaml"


@workflow.defn(sandboxed=False)
class Trivial:
    """The shortest workflow there is: one workflow task, no activity."""

    @workflow.run
    async def run(self) -> None:
        return None


def recommended_limits() -> dict[str, str]:
    """deploy/temporal/dynamicconfig.yaml as `--dynamic-config-value` pairs (JSON values)."""
    document = yaml.safe_load(DYNAMIC_CONFIG.read_text())
    return {key: json.dumps(entries[0]["value"]) for key, entries in document.items()}


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the server's /metrics, by (name, labels), names as the server writes
    them (the parser adds `_total` to counters; the server's counters have none)."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return {
        (
            sample.name.removesuffix("_total") if family.type == "counter" else sample.name,
            frozenset(sample.labels.items()),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def delta(before: Samples, after: Samples, name: str, **match: str) -> dict[frozenset, float]:
    """after - before of every `name` sample whose labels include `match`."""
    out = {}
    for (sample, labels), value in after.items():
        if sample == name and all((k, v) in labels for k, v in match.items()):
            out[labels] = value - before.get((sample, labels), 0.0)
    return out


def refusals(before: Samples, after: Samples) -> dict[str, Any]:
    """RESOURCE_EXHAUSTED the server counted, by cause and by operation."""
    by_cause: dict[str, float] = defaultdict(float)
    by_operation: dict[str, float] = defaultdict(float)
    for labels, value in delta(before, after, "service_errors_resource_exhausted").items():
        named = dict(labels)
        cause = f"{named['resource_exhausted_cause']}/{named['resource_exhausted_scope']}"
        by_cause[cause] += value
        by_operation[named["operation"]] += value
    return {
        "total": int(sum(by_cause.values())),
        "by_cause_and_scope": {k: int(v) for k, v in sorted(by_cause.items()) if v},
        "by_operation": {k: int(v) for k, v in sorted(by_operation.items()) if v},
    }


def schedule_to_start_p99(before: Samples, after: Samples, taskqueue: str) -> float | None:
    """p99 of workflow-task schedule-to-start on the queue, from the server's histogram."""
    cumulative: dict[float, float] = defaultdict(float)
    for labels, value in delta(
        before, after, "task_schedule_to_start_latency_bucket", taskqueue=taskqueue
    ).items():
        named = dict(labels)
        if named["task_type"] == "Workflow" and named["partition"] == "__normal__":
            cumulative[float(named["le"])] += value
    if not cumulative or not cumulative[float("inf")]:
        return None
    total, lower, below = cumulative[float("inf")], 0.0, 0.0
    for bound in sorted(cumulative):  # Prometheus' histogram_quantile: linear in the bucket
        if cumulative[bound] >= 0.99 * total:
            if bound == float("inf"):
                return lower
            share = (0.99 * total - below) / max(cumulative[bound] - below, 1e-9)
            return round(lower + (bound - lower) * share, 4)
        lower, below = bound, cumulative[bound]
    return None


async def run_batch(
    name: str, limits: dict[str, str], workflows: int, drain_seconds: int
) -> dict[str, Any]:
    from temporalio.worker import Worker

    from indexer.config import ChainConfig
    from indexer.embedded import child_process, free_port, temporal_dev_server_args
    from indexer.temporal_client import connect_temporal

    parallelism = ChainConfig(name="d", rpc_url="http://x").effective_parallelism()
    port, metrics_port = free_port(), free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    queue = f"limits-{uuid.uuid4().hex[:6]}"
    with (
        tempfile.TemporaryDirectory() as work,
        child_process(
            temporal_dev_server_args(
                port,
                db_file=Path(work) / "temporal.db",
                dynamic_config=limits,
                metrics_port=metrics_port,
            ),
            "127.0.0.1",
            port,
            log_path=Path(work) / "temporal.log",
        ),
    ):
        client = await connect_temporal(f"127.0.0.1:{port}", tracing=False)
        before = await scrape(metrics_url)
        semaphore = asyncio.Semaphore(parallelism)

        async def start(index: int) -> None:
            async with semaphore:
                await client.start_workflow(Trivial.run, id=f"t-{index}", task_queue=queue)
            if (index + 1) % 5_000 == 0:
                print(f"  {name}: {index + 1:,} started", flush=True)

        async with Worker(client, task_queue=queue, workflows=[Trivial]):
            began = time.perf_counter()
            await asyncio.gather(*(start(i) for i in range(workflows)))
            started_seconds = time.perf_counter() - began
            print(f"  {name}: {workflows:,} started in {started_seconds:.1f} s", flush=True)
            open_workflows = workflows
            while time.perf_counter() - began < started_seconds + drain_seconds:
                # visibility trails completions a little
                open_workflows = (await client.count_workflows("ExecutionStatus = 'Running'")).count
                if not open_workflows:
                    break
                await asyncio.sleep(1)
            finished_seconds = time.perf_counter() - began
        after = await scrape(metrics_url)
    result = {
        "limits": name,
        "dynamic_config": limits,
        "workflows": workflows,
        "start_parallelism": parallelism,
        "start_seconds": round(started_seconds, 1),
        "starts_per_second": round(workflows / started_seconds, 1),
        "completed": workflows - open_workflows,
        "still_open_when_measured": open_workflows,
        "measured_seconds": round(finished_seconds, 1),
        "completions_per_second": round((workflows - open_workflows) / finished_seconds, 1),
        "resource_exhausted": refusals(before, after),
        "workflow_task_schedule_to_start_p99_seconds": schedule_to_start_p99(
            before,
            after,
            queue.replace("-", "_"),  # the server writes `-` in labels as `_`
        ),
    }
    print(f"  {name}: {json.dumps(result)}", flush=True)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=50_000)
    parser.add_argument(
        "--limited-rps",
        type=int,
        help="Also run with frontend.namespaceRPS at this (burst ratio 1), to see refusals.",
    )
    parser.add_argument(
        "--drain-seconds",
        type=int,
        default=120,
        help="After the last start, wait at most this long for open workflows to complete.",
    )
    args = parser.parse_args()
    drain = args.drain_seconds
    runs = [
        await run_batch("default", {}, args.workflows, drain),
        await run_batch("recommended", recommended_limits(), args.workflows, drain),
    ]
    if args.limited_rps:
        limited = {
            "frontend.namespaceRPS": str(args.limited_rps),
            "frontend.namespaceBurstRatio": "1",
        }
        name = f"namespaceRPS={args.limited_rps}"
        runs.append(await run_batch(name, limited, args.workflows, drain))
    flags = "" if args.workflows == 50_000 else f" --workflows {args.workflows}"
    flags += f" --limited-rps {args.limited_rps}" if args.limited_rps else ""
    flags += f" --drain-seconds {drain}" if drain != 120 else ""
    command = f"make bench-temporal-limits (.venv/bin/python bench/temporal_limits.py{flags})"
    result = {
        **provenance(command),
        "server": "temporal CLI 1.9.1 (Server 1.32.0) dev server, SQLite file with WAL pragmas",
        "runs": runs,
        "note": os.environ.get("BENCH_NOTE", ""),
    }
    path = write_result("temporal-limits", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
