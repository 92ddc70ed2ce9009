"""HeadScan: per chain, forever — find the head, repair reorgs, hand the backlog to scheduling."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from indexer.workflows.activity_names import SCAN_HEAD, START_RANGES, START_SCHEDULER
    from indexer.workflows.history import HEADSCAN_BOUNDED_HISTORY, history_full
    from indexer.workflows.inputs import (
        HeadScanInput,
        ScanHeadInput,
        ScanResult,
        SchedulerInput,
        StartRangesInput,
        StartRangesResult,
    )
    from indexer.workflows.policies import (
        HEARTBEAT_TIMEOUT,
        PATIENT,
        SCAN_TIMEOUT,
        START_RANGES_TIMEOUT,
        START_SCHEDULER_TIMEOUT,
    )
    from indexer.workflows.ranges import aligned_ranges, clip

# ContinueAsNew after this many scans, or sooner when the run's history is full (history.py):
# a scan that hands 10,000 gaps on carries them twice (its result, the Scheduler's input).
SCANS_PER_RUN = 500
# The patch from which scans index a small gap at the head themselves and follow the head for a
# while (activities/live_edge.py): runs started before it replay asking for plain scans.
HEADSCAN_LIVE_EDGE = "headscan-live-edge"


@workflow.defn(name="HeadScan")
class HeadScan:
    @workflow.run
    async def run(self, request: HeadScanInput) -> None:
        bounded = workflow.patched(HEADSCAN_BOUNDED_HISTORY)
        live_edge = workflow.patched(HEADSCAN_LIVE_EDGE)
        scans = 0
        while scans < SCANS_PER_RUN:
            scan = await workflow.execute_activity(
                SCAN_HEAD,
                ScanHeadInput(request.chain, live_edge),
                result_type=ScanResult,
                start_to_close_timeout=SCAN_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PATIENT,
            )
            if scan.gaps:
                await self._schedule(request.chain, scan)
            await workflow.sleep(timedelta(seconds=scan.knobs.head_poll_interval_seconds))
            scans += 1
            if bounded and history_full(request.history):
                break
        workflow.continue_as_new(
            HeadScanInput(request.chain, request.scans + scans, request.history)
        )

    async def _schedule(self, chain: str, scan: ScanResult) -> None:
        """Small backlogs, and the live edge of big ones, go direct; the rest to the Scheduler."""
        knobs = scan.knobs
        if scan.missing_blocks < knobs.catchup_threshold:
            direct, historical = scan.gaps, []
        else:
            edge = scan.head - knobs.catchup_threshold + 1
            direct = clip(scan.gaps, edge, scan.head)
            historical = clip(scan.gaps, 0, edge - 1)
        if direct:
            newest_first = sorted(
                aligned_ranges(direct, knobs.blocks_per_workflow), key=lambda r: -r.start
            )
            await workflow.execute_activity(
                START_RANGES,
                StartRangesInput(
                    chain, newest_first, "direct", knobs.parallelism, knobs.index_max_attempts
                ),
                result_type=StartRangesResult,
                start_to_close_timeout=START_RANGES_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PATIENT,
            )
        if historical:
            await workflow.execute_activity(
                START_SCHEDULER,
                SchedulerInput(chain, historical),
                result_type=bool,
                start_to_close_timeout=START_SCHEDULER_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PATIENT,
            )
