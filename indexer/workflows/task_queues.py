"""The task queues of a worker: its own, and the one its ranges (index_range) are run from.

Ranges have a queue of their own so that a worker asks for one only while its memory budget can
feed it (worker_slots.py), while scans and scheduling, on the main queue, always find a slot:
Temporal hands a poller whatever task of its queue comes next, never one of a chosen type.
"""

from __future__ import annotations

RANGES_SUFFIX = "-ranges"
# The patch that moved index_range to the ranges queue: runs started before it replay (and
# retry their range) on the main queue, where the worker still runs index_range for them.
INDEX_RANGE_OWN_QUEUE = "index-range-own-queue"


def ranges_task_queue(task_queue: str) -> str:
    """The queue index_range activities of workflows on `task_queue` are scheduled on."""
    return f"{task_queue}{RANGES_SUFFIX}"


def worker_task_queues(task_queue: str) -> list[str]:
    """Every queue a worker of `task_queue` polls: what queue-depth metrics must describe."""
    return [task_queue, ranges_task_queue(task_queue)]
