"""The client side of Temporal: connecting, our workflow IDs, and starting our workflows.

Every start of a HeadScan, Scheduler, backfill or IndexRange goes through `start_once`: a
deterministic ID, and a policy that never runs two of the same ID at once (a start that finds
the ID running joins it), so scheduling the same work twice is harmless. The admin API imports
this module, not the worker: it must not load activities, RPC clients or the worker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig

from exporter.tracing import temporal_interceptor
from indexer.workflows.inputs import HeadScanInput, IndexRangeInput, Range, SchedulerInput
from indexer.workflows.payloads import DATA_CONVERTER
from indexer.workflows.ranges import slot_of

CONNECT_PATIENCE_SECONDS = 30.0  # a dev server started with us answers within a few seconds

# Workflow type names, as the workflow classes register them (indexer/workflows/).
HEAD_SCAN = "HeadScan"
SCHEDULER = "Scheduler"
INDEX_RANGE = "IndexRange"


def head_scan_id(chain: str) -> str:
    return f"headscan:{chain}"


def scheduler_id(chain: str) -> str:
    return f"scheduler:{chain}"


def backfill_id(chain: str, first: int, last: int) -> str:
    return f"backfill:{chain}:{first}-{last}"


def index_range_id(chain: str, block_range: Range, size: int) -> str:
    """The ID of the aligned slot of `size` blocks holding `block_range` (ranges never cross
    one: workflows/ranges.aligned_ranges), whatever part of the slot the range covers.

    A range commits its batches as it goes, so a scan while it runs finds the rest of its slot
    as a gap; named by the gap, that rest would start a second run over the same blocks (two
    COPYs of each block, one failing on the key). Named by the slot, the start joins the
    running one; what it leaves is scheduled by a scan after it ends.
    """
    slot = slot_of(block_range.start, size)
    return f"index:{chain}:{slot.start}-{slot.end}"


def chain_workflows_query(chain: str) -> str:
    """Visibility query for every workflow of the chain (HeadScan, Schedulers, ranges).

    Exact IDs or prefixes ending in `:`: chain `main` must not match `mainnet`'s workflows.
    """
    return (
        f"WorkflowId = '{head_scan_id(chain)}' OR WorkflowId = '{scheduler_id(chain)}'"
        f" OR WorkflowId STARTS_WITH 'backfill:{chain}:' OR WorkflowId STARTS_WITH 'index:{chain}:'"
    )


def inflight_ranges_query(chain: str) -> str:
    """Visibility query for the chain's unfinished IndexRange workflows."""
    return (
        f"WorkflowType = '{INDEX_RANGE}' AND ExecutionStatus = 'Running'"
        f" AND WorkflowId STARTS_WITH 'index:{chain}:'"
    )


async def connect_temporal(
    address: str,
    namespace: str = "default",
    runtime: Runtime | None = None,
    tracing: bool = True,
) -> Client:
    """A client whose calls carry trace context; waits out a server that is still starting."""
    return await _connect_patiently(
        address,
        namespace=namespace,
        runtime=runtime,
        interceptors=[temporal_interceptor()] if tracing else [],
        data_converter=DATA_CONVERTER,
    )


async def fail_fast_client(client: Client) -> Client:
    """A second connection without the SDK's silent retries, used to start workflows.

    The SDK retries RESOURCE_EXHAUSTED inside its core and reports nothing; starting through
    this client, the scheduler sees each refusal, counts it and backs off itself. Connecting
    is as patient as the first client's: a worker must not exit on one refused connect.
    """
    config = client.service_client.config
    return await _connect_patiently(
        config.target_host,
        namespace=client.namespace,
        runtime=config.runtime,
        interceptors=client.config()["interceptors"],
        data_converter=client.data_converter,
        retry_config=RetryConfig(max_retries=0),
    )


async def _connect_patiently(address: str, **options: Any) -> Client:
    """`Client.connect`, tried again for CONNECT_PATIENCE_SECONDS while it fails."""
    deadline = time.monotonic() + CONNECT_PATIENCE_SECONDS
    while True:
        try:
            return await Client.connect(address, **options)
        except RuntimeError as exc:  # the SDK reports connect failures as RuntimeError
            if time.monotonic() > deadline:
                raise RuntimeError(f"Temporal at {address} is not reachable: {exc}") from exc
            await asyncio.sleep(0.5)


def was_started(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether a start made a new run, or found the same workflow ID running (USE_EXISTING)."""
    response = getattr(handle, "_start_workflow_response", None)  # the SDK keeps no public field
    return bool(getattr(response, "started", True))


async def start_once(
    client: Client, workflow: str, arg: object, workflow_id: str, task_queue: str
) -> bool:
    """Start `workflow` unless a run with this ID is open; True if a new run started.

    A closed run of the same ID may run again (a range re-indexed after a reorg, a HeadScan
    restarted after a deploy); an open one is joined, never duplicated.
    """
    handle: WorkflowHandle[Any, Any] = await client.start_workflow(
        workflow,
        arg,
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return was_started(handle)


async def start_head_scan(client: Client, chain: str, task_queue: str) -> bool:
    """Start the chain's HeadScan unless it is already running."""
    return await start_once(
        client, HEAD_SCAN, HeadScanInput(chain), head_scan_id(chain), task_queue
    )


async def start_scheduler(
    client: Client, request: SchedulerInput, workflow_id: str, task_queue: str
) -> bool:
    """Start a Scheduler for a backlog (HeadScan's, or a backfill's) unless it is running."""
    return await start_once(client, SCHEDULER, request, workflow_id, task_queue)


async def start_index_range(
    client: Client,
    chain: str,
    block_range: Range,
    size: int,
    max_attempts: int,
    task_queue: str,
) -> bool:
    """Start the IndexRange of `block_range` unless a range of its slot (`size` blocks) runs."""
    request = IndexRangeInput(chain, block_range.start, block_range.end, max_attempts)
    return await start_once(
        client, INDEX_RANGE, request, index_range_id(chain, block_range, size), task_queue
    )
