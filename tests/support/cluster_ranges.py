"""Which host holds which range: the IndexRange activities a worker has started, from Temporal.

A worker's identity is the SDK's default, `pid@hostname`; every host shares this machine's
hostname, so the pid (the `ip netns exec` child execs the worker) tells the hosts apart.
"""

from __future__ import annotations

import time

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from tests.support.waiting import wait_until

STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


def identity_of(pid: int) -> str:
    """The start of the identity of the worker with this pid."""
    return f"{pid}@"


async def started_ranges(client: Client, chain: str) -> dict[str, str]:
    """Running IndexRange workflow ID -> identity of the worker its activity is started on."""
    held: dict[str, str] = {}
    async for execution in client.list_workflows(
        f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
        " AND ExecutionStatus = 'Running'"
    ):
        description = await client.get_workflow_handle(execution.id).describe()
        for pending in description.raw_description.pending_activities:
            if pending.state == STARTED:
                held[execution.id] = pending.last_worker_identity
    return held


async def ranges_held_by(client: Client, chain: str, pid: int) -> list[str]:
    """The ranges whose activity is started on the worker with this pid."""
    held = await started_ranges(client, chain)
    return sorted(wid for wid, who in held.items() if who.startswith(identity_of(pid)))


async def wait_moved(
    client: Client, chain: str, ranges: list[str], pid: int, timeout: float
) -> float:
    """Wait until each range is done or started on another worker than `pid`; the time it was."""
    left = set(ranges)

    async def moved() -> bool:
        for wid in sorted(left):
            description = await client.get_workflow_handle(wid).describe()
            pending = description.raw_description.pending_activities
            if not pending or any(
                p.state == STARTED and not p.last_worker_identity.startswith(identity_of(pid))
                for p in pending
            ):
                left.discard(wid)
        return not left

    async def still_held() -> str:
        return f"{sorted(left)} not yet moved ({time.monotonic():.1f})"

    return await wait_until(
        moved, timeout, "the dead host's ranges to move", 0.1, diagnose=still_held
    )


async def finished_by(client: Client, workflow_id: str) -> tuple[int, str]:
    """(attempts, identity of the worker that completed the range's activity), from history."""
    attempts, identity = 0, ""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        if event.HasField("activity_task_started_event_attributes"):
            attempts = max(attempts, event.activity_task_started_event_attributes.attempt)
        if event.HasField("activity_task_completed_event_attributes"):
            identity = event.activity_task_completed_event_attributes.identity
    return attempts, identity
