"""IndexRange: one block range fetched and stored by one heartbeating activity."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from indexer.workflows.inputs import IndexRangeInput, IndexRangeResult

BASE_TIMEOUT = timedelta(seconds=60)
PER_BLOCK_TIMEOUT = timedelta(milliseconds=100)  # generous: a slow provider, a busy database
# Every activity of every workflow heartbeats (activities/heartbeat.py) and has this timeout,
# so the work of a worker that died is retried elsewhere within seconds.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


def activity_timeout(blocks: int) -> timedelta:
    """The start-to-close timeout grows with the range, so big ranges are not cut short."""
    return BASE_TIMEOUT + PER_BLOCK_TIMEOUT * blocks


@workflow.defn(name="IndexRange")
class IndexRange:
    @workflow.run
    async def run(self, request: IndexRangeInput) -> IndexRangeResult:
        return await workflow.execute_activity(
            "index_range",
            request,
            result_type=IndexRangeResult,
            start_to_close_timeout=activity_timeout(request.end - request.start + 1),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=request.max_attempts,
                non_retryable_error_types=["UnknownChain"],
            ),
        )
