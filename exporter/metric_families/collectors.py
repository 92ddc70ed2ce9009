"""The exporter about itself: each background collector's health, and the build."""

from __future__ import annotations

from exporter.metric_families.base import Families


class CollectorFamilies(Families):
    """The collector and build families."""

    def declare(self) -> None:
        self.collector_duration = self._gauge(
            "tindexer_collector_duration_seconds",
            "How long a background collector's last refresh took.",
            ["collector"],
        )
        self.collector_last_success = self._gauge(
            "tindexer_collector_last_success_timestamp_seconds",
            "Unix time of a background collector's last successful refresh.",
            ["collector"],
        )
        self.collector_errors = self._counter(
            "tindexer_collector_errors_total",
            "Refreshes of a background collector that failed.",
            ["collector"],
        )
        self.build_info = self._info(
            "tindexer_build",
            "Version of the running indexer, in its `version` label.",
        )
