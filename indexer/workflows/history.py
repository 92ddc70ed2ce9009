"""When a long-running workflow's run has grown enough to continue as new.

A history past 51,200 events or 50 MB is refused by Temporal and the workflow fails; one that
is merely large makes every replay (a worker restart, a sticky cache miss) slow. HeadScan and
the Scheduler run for as long as a chain is indexed, so each run ends on the first of: the
server suggests it, or the run's history passes its `HistoryBounds` in events or bytes.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from indexer.workflows.inputs import HistoryBounds

# The patch that brought the bound into each workflow: runs started before it replay without.
HEADSCAN_BOUNDED_HISTORY = "headscan-bounded-history"
SCHEDULER_BOUNDED_HISTORY = "scheduler-bounded-history"


def history_full(bounds: HistoryBounds) -> bool:
    """Whether this run should continue as new; deterministic (read from the history itself)."""
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_length() >= bounds.max_events
        or info.get_current_history_size() >= bounds.max_bytes
    )
