"""The activity names Temporal sees, written once: the activities' @activity.defn, the
workflows' calls, the worker's list and its slot supplier all use these.

They are recorded in every workflow history (tests/replay/): never change a value.
"""

from __future__ import annotations

INDEX_RANGE = "index_range"
SCAN_HEAD = "scan_head"
START_RANGES = "start_ranges"
SCHEDULER_TICK = "scheduler_tick"
START_SCHEDULER = "start_scheduler"

ACTIVITY_NAMES = (INDEX_RANGE, SCAN_HEAD, START_RANGES, SCHEDULER_TICK, START_SCHEDULER)
