"""Scheduling: the IndexRange and Scheduler workflows the indexer starts, and how."""

from __future__ import annotations

from exporter.metric_families.base import LATENCY_BUCKETS, Families


class SchedulingFamilies(Families):
    """The scheduling families."""

    def declare(self) -> None:
        self.blocks_scheduled = self._counter(
            "tindexer_blocks_scheduled_total",
            "Blocks covered by IndexRange workflows the indexer started, by scheduling mode.",
            ["chain", "mode"],
        )
        self.workflows_started = self._counter(
            "tindexer_workflows_started_total",
            "Workflows the indexer started (new runs only, not reused running ones), by type.",
            ["chain", "workflow"],
        )
        self.head_scan_activities = self._counter(
            "tindexer_head_scan_activities_total",
            "Head scans HeadScan ran, each one scan_head activity and one timer in its history"
            " (a scan may look at the head many times): with the workflows started, what"
            " following the chain costs Temporal.",
            ["chain"],
        )
        self.workflow_start_failures = self._counter(
            "tindexer_workflow_start_failures_total",
            "Workflow start attempts refused for a reason other than rate limiting (then retried).",
            ["chain", "reason"],
        )
        self.schedule_batch_duration = self._histogram(
            "tindexer_schedule_batch_duration_seconds",
            "Time to start one batch of IndexRange workflows through the start pool.",
            ["chain"],
            buckets=LATENCY_BUCKETS,
        )
        self.scheduler_continue_as_new = self._counter(
            "tindexer_scheduler_continue_as_new_total",
            "Times a Scheduler workflow continued as new, after continue_as_new_threshold starts"
            " or with a full history.",
            ["chain"],
        )
        self.scheduler_parallelism = self._gauge(
            "tindexer_scheduler_parallelism",
            "Size of the worker pool that starts IndexRange workflows (multiplier × CPU or set).",
            ["chain"],
        )
        self.inflight_ranges = self._gauge(
            "tindexer_inflight_ranges",
            "IndexRange workflows started and not yet finished, as the Scheduler last counted.",
            ["chain"],
        )
