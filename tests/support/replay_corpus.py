"""The committed workflow histories: where they live, how to load them, what each one covers."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

HERE = Path(__file__).resolve().parent.parent / "replay"
HISTORIES = HERE / "histories"
MANIFEST = HERE / "manifest.json"  # file name -> workflow ID (history JSON does not hold it)
WORKFLOW_TYPES = ("HeadScan", "Scheduler", "IndexRange")


@dataclass(frozen=True)
class Recorded:
    file: str
    history: WorkflowHistory

    @property
    def workflow_type(self) -> str:
        return workflow_type(self.history)


def workflow_type(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return str(started.workflow_type.name)


def commands(history: WorkflowHistory) -> dict[str, int]:
    """What the workflow did, counted: `activity:<type>`, `timer`, `continue_as_new`, the end."""
    counted: Counter[str] = Counter()
    for event in history.events:
        counted[_command(event)] += 1
    del counted[""]
    return dict(sorted(counted.items()))


def _command(event: HistoryEvent) -> str:
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return f"activity:{event.activity_task_scheduled_event_attributes.activity_type.name}"
    return {
        EventType.EVENT_TYPE_TIMER_STARTED: "timer",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continue_as_new",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    }.get(kind, "")


def load() -> list[Recorded]:
    """Every history named in the manifest; a history file the manifest misses is an error."""
    manifest = json.loads(MANIFEST.read_text())
    listed = {entry["file"]: entry["workflow_id"] for entry in manifest["histories"]}
    on_disk = {path.name for path in HISTORIES.glob("*.json")}
    if on_disk != set(listed):
        unlisted, missing = sorted(on_disk - set(listed)), sorted(set(listed) - on_disk)
        raise ValueError(
            f"{HISTORIES.name}/ and {MANIFEST.name} disagree: not in the manifest {unlisted},"
            f" no such file {missing}"
        )
    return [
        Recorded(name, WorkflowHistory.from_json(workflow_id, (HISTORIES / name).read_text()))
        for name, workflow_id in sorted(listed.items())
    ]


def coverage_gaps(recorded: list[Recorded]) -> list[str]:
    """The paths of each workflow that no committed history takes; empty when all are covered."""
    by_type: dict[str, Counter[str]] = {name: Counter() for name in WORKFLOW_TYPES}
    for item in recorded:
        by_type.setdefault(item.workflow_type, Counter()).update(commands(item.history))
    wanted = {
        "HeadScan": ["activity:scan_head", "activity:start_ranges", "activity:start_scheduler"],
        "Scheduler": ["activity:scheduler_tick", "activity:start_ranges", "timer"],
        "IndexRange": ["activity:index_range", "completed"],
    }
    gaps = [f"no {name} history" for name in WORKFLOW_TYPES if not by_type[name]]
    gaps += [
        f"no {name} history has {command}"
        for name, needed in wanted.items()
        for command in needed
        if by_type[name][command] == 0
    ]
    if by_type["HeadScan"]["timer"] < 2:
        gaps.append("HeadScan histories hold fewer than two scans")
    if by_type["Scheduler"]["continue_as_new"] == 0:
        gaps.append("no Scheduler run continued as new")
    if by_type["Scheduler"]["completed"] == 0:
        gaps.append("no Scheduler run completed")
    return gaps
