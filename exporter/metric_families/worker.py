"""Worker: activity attempts on this worker, its memory budget, and the replica autoscaler
(`tindexer workers --autoscale`)."""

from __future__ import annotations

from exporter.metric_families.base import LATENCY_BUCKETS, Families


class WorkerFamilies(Families):
    """The worker families."""

    def declare(self) -> None:
        # Which worker a scrape came from, beyond the `instance` Prometheus adds: dashboards
        # break workers down by it, and the worker-host-down alert tells workers from the rest.
        self.worker_info = self._gauge(
            "tindexer_worker_info",
            "Always 1 in a process that runs a worker (`tindexer worker`, `tindexer up`): its"
            " hostname and its Temporal worker identity (`pid@hostname` unless set), as labels.",
            ["host", "worker"],
        )
        self.activity_duration = self._histogram(
            "tindexer_activity_duration_seconds",
            "Time an activity attempt took on this worker, by activity and outcome.",
            ["activity", "outcome"],
            buckets=LATENCY_BUCKETS,
        )
        self.activity_timeouts = self._counter(
            "tindexer_activity_timeouts_total",
            "Activity attempts that ended in a timeout (start-to-close or heartbeat).",
            ["activity"],
        )
        self.activities_handed_back = self._counter(
            "tindexer_activities_handed_back_total",
            "Activity tasks that reached this worker after it began to stop, handed back unrun.",
            ["activity"],
        )
        self.worker_memory_budget = self._gauge(
            "tindexer_worker_memory_budget_bytes",
            "JSON-RPC answer bytes this worker may hold at once (worker_memory_budget_bytes).",
        )
        self.worker_bytes_in_flight = self._gauge(
            "tindexer_worker_in_flight_bytes",
            "JSON-RPC answer bytes this worker holds now: batches fetched or being fetched and"
            " not yet stored.",
        )
        self.worker_budget_wait = self._counter(
            "tindexer_worker_budget_wait_seconds_total",
            "Time batches spent waiting for room in this worker's memory budget, summed over"
            " the waiting batches.",
        )
        self.replicas_desired = self._gauge(
            "tindexer_replicas_desired",
            "Worker replicas the autoscaler wants for a chain's backlog, within its bounds.",
            ["chain"],
        )
        self.replicas_current = self._gauge(
            "tindexer_replicas_current",
            "Worker replicas running for a chain, not counting those draining to stop.",
            ["chain"],
        )
        self.replicas_min = self._gauge(
            "tindexer_replicas_min",
            "The chain's configured min_replicas, as the autoscaler last read it.",
            ["chain"],
        )
        self.replicas_max = self._gauge(
            "tindexer_replicas_max",
            "The chain's configured max_replicas, as the autoscaler last read it.",
            ["chain"],
        )
