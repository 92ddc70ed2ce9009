"""IndexRange: one block range fetched and stored by one heartbeating activity."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from indexer.workflows.activity_names import INDEX_RANGE
    from indexer.workflows.inputs import IndexRangeInput, IndexRangeResult
    from indexer.workflows.policies import (
        HEARTBEAT_TIMEOUT,
        index_range_retry,
        index_range_timeout,
    )
    from indexer.workflows.task_queues import INDEX_RANGE_OWN_QUEUE, ranges_task_queue


@workflow.defn(name="IndexRange")
class IndexRange:
    @workflow.run
    async def run(self, request: IndexRangeInput) -> IndexRangeResult:
        # On the ranges queue, polled only while a worker's memory budget has room
        # (worker_slots.py); runs from before the patch keep the workflow's own queue.
        task_queue = (
            ranges_task_queue(workflow.info().task_queue)
            if workflow.patched(INDEX_RANGE_OWN_QUEUE)
            else None
        )
        return await workflow.execute_activity(
            INDEX_RANGE,
            request,
            result_type=IndexRangeResult,
            task_queue=task_queue,
            start_to_close_timeout=index_range_timeout(request.end - request.start + 1),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=index_range_retry(request.max_attempts),
        )
