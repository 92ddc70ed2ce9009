"""Backfill: the missing blocks of a range become IndexRange workflows with the usual IDs.

Small backfills start their ranges directly (as HeadScan does near the head); big ones hand
the gaps to a Scheduler workflow, which keeps `max_inflight_ranges` and ContinueAsNew. Both
use the deterministic `index:{chain}:{start}-{end}` IDs aligned to `blocks_per_workflow`, so
a backfill never duplicates a range HeadScan or the Scheduler is already running.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import Client

from indexer.api.errors import ApiError
from indexer.api.validation import BackfillRequest
from indexer.temporal_client import backfill_id, start_index_range, start_scheduler
from indexer.workflows.inputs import Range, SchedulerInput
from indexer.workflows.ranges import aligned_ranges

MAX_SCHEDULER_GAPS = 10_000  # the Scheduler's input carries the gaps: keep its payload small
MAX_DIRECT_RANGES = 500  # started within one request; more go through a Scheduler


@dataclass(frozen=True)
class BackfillPlan:
    chain: str
    gaps: list[Range]
    blocks_per_workflow: int
    range_count: int
    mode: str  # "none", "direct" or "scheduler"
    scheduler_id: str | None = None


def count_aligned_ranges(gaps: list[Range], size: int) -> int:
    """How many aligned ranges `aligned_ranges(gaps, size)` yields, without listing them."""
    return sum(gap.end // size - gap.start // size + 1 for gap in gaps)


def plan_backfill(
    chain: str, wanted: BackfillRequest, gaps: list[Range], size: int, direct_limit: int
) -> BackfillPlan:
    """Direct when the ranges fit in `direct_limit` (max_inflight_ranges), else a Scheduler."""
    count = count_aligned_ranges(gaps, size)
    if count == 0:
        return BackfillPlan(chain, gaps, size, 0, "none")
    if count <= min(direct_limit, MAX_DIRECT_RANGES):
        return BackfillPlan(chain, gaps, size, count, "direct")
    if len(gaps) > MAX_SCHEDULER_GAPS:
        raise ApiError(
            400, f"the range has more than {MAX_SCHEDULER_GAPS} gaps: backfill less at once", "to"
        )
    workflow_id = backfill_id(chain, wanted.from_block, wanted.to_block)
    return BackfillPlan(chain, gaps, size, count, "scheduler", workflow_id)


async def start_backfill(
    client: Client, plan: BackfillPlan, task_queue: str, parallelism: int, max_attempts: int
) -> int:
    """Start the plan's workflows; returns how many new runs started (running ones are kept)."""
    if plan.mode == "scheduler":
        assert plan.scheduler_id is not None
        started = await start_scheduler(
            client, SchedulerInput(plan.chain, plan.gaps), plan.scheduler_id, task_queue
        )
        return int(started)
    limit = asyncio.Semaphore(parallelism)

    async def start(block_range: Range) -> bool:
        async with limit:
            return await start_index_range(
                client, plan.chain, block_range, plan.blocks_per_workflow, max_attempts, task_queue
            )

    ranges = list(aligned_ranges(plan.gaps, plan.blocks_per_workflow))
    return sum(await asyncio.gather(*(start(block_range) for block_range in ranges)))
