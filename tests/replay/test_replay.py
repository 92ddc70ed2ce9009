"""Replay the committed histories against the current workflow code: a change that would make
running workflows replay differently fails here, before it reaches a deployed worker.

The histories come from a real indexing run (tests/support/replay_recorder.py). After an
intended change of a workflow's commands (behind `workflow.patched(...)`, or once no old run is
left), record them again. Replay runs in-process: no Temporal server, no database.
"""

from __future__ import annotations

import re
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.worker import Interceptor, Replayer
from temporalio.workflow import NondeterminismError

# The sandbox re-imports this module to run IndexRangeWithExtraTimer: pass the rest through.
with workflow.unsafe.imports_passed_through():
    import pytest

    from exporter.tracing import temporal_interceptor
    from indexer.workflows.headscan import HeadScan
    from indexer.workflows.index_range import IndexRange
    from indexer.workflows.inputs import IndexRangeInput, IndexRangeResult
    from indexer.workflows.payloads import DATA_CONVERTER
    from indexer.workflows.policies import HEARTBEAT_TIMEOUT, index_range_timeout
    from indexer.workflows.scheduler import Scheduler
    from tests.support.replay_corpus import WORKFLOW_TYPES, Recorded, coverage_gaps, load

WORKFLOWS = [HeadScan, Scheduler, IndexRange]


@pytest.fixture(scope="module")
def recorded() -> list[Recorded]:
    return load()


def test_every_workflow_type_and_path_has_a_history(recorded: list[Recorded]) -> None:
    """Without histories the replay test would pass on nothing."""
    assert {item.workflow_type for item in recorded} == set(WORKFLOW_TYPES)
    assert coverage_gaps(recorded) == []


# The worker's client carries the tracing interceptor, which the SDK hands to the worker as a
# workflow interceptor too; replay with it, as production runs, and without it.
@pytest.mark.parametrize("traced", [True, False], ids=["traced", "untraced"])
async def test_histories_replay_on_current_code(recorded: list[Recorded], traced: bool) -> None:
    interceptors: list[Interceptor] = [temporal_interceptor()] if traced else []
    replayer = Replayer(
        workflows=WORKFLOWS, interceptors=interceptors, data_converter=DATA_CONVERTER
    )
    failures = {}
    for item in recorded:
        result = await replayer.replay_workflow(item.history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures[item.file] = reason(result.replay_failure)
    assert failures == {}


def reason(failure: Exception) -> str:
    """The core's own message (`[TMPRL1100] Nondeterminism error: …`) without its wrapping."""
    found = re.search(r'message: "(.*?)", source:', str(failure))
    return f"{type(failure).__name__}: {found.group(1) if found else failure}"


@workflow.defn(name="IndexRange")
class IndexRangeWithExtraTimer:
    """IndexRange as a careless edit would leave it: a timer before its one activity."""

    @workflow.run
    async def run(self, request: IndexRangeInput) -> IndexRangeResult:
        await workflow.sleep(timedelta(seconds=1))
        return await workflow.execute_activity(
            "index_range",
            request,
            result_type=IndexRangeResult,
            start_to_close_timeout=index_range_timeout(request.end - request.start + 1),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=request.max_attempts),
        )


@workflow.defn(name="IndexRange")
class IndexRangeWithRenamedActivity:
    """IndexRange calling its activity by another name, as a rename without a patch would."""

    @workflow.run
    async def run(self, request: IndexRangeInput) -> IndexRangeResult:
        return await workflow.execute_activity(
            "index_blocks",
            request,
            result_type=IndexRangeResult,
            start_to_close_timeout=index_range_timeout(request.end - request.start + 1),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=request.max_attempts),
        )


@pytest.mark.parametrize(
    "changed", [IndexRangeWithExtraTimer, IndexRangeWithRenamedActivity], ids=["timer", "rename"]
)
async def test_replay_detects_a_changed_command_sequence(
    recorded: list[Recorded], changed: type
) -> None:
    """The replay test can fail: a workflow whose commands changed fails on every history."""
    replayer = Replayer(workflows=[changed])
    index_ranges = [item for item in recorded if item.workflow_type == "IndexRange"]
    assert index_ranges
    for item in index_ranges:
        result = await replayer.replay_workflow(item.history, raise_on_replay_failure=False)
        assert isinstance(result.replay_failure, NondeterminismError), item.file
        assert "[TMPRL1100] Nondeterminism error" in str(result.replay_failure), item.file
