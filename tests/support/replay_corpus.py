"""The committed workflow histories: where they live, how to load them, what each one covers.

A recording is a directory of histories and the manifest that names them: the first one is
histories/ with manifest.json beside it; each later one (`replay_recorder --name NAME`) is
histories/NAME/ with its own manifest.json inside, so histories of older code stay and keep
proving that runs they started still replay.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from indexer.workflows.history import HEADSCAN_BOUNDED_HISTORY, SCHEDULER_BOUNDED_HISTORY
from indexer.workflows.task_queues import INDEX_RANGE_OWN_QUEUE

HERE = Path(__file__).resolve().parent.parent / "replay"
HISTORIES = HERE / "histories"
MANIFEST = HERE / "manifest.json"  # file name -> workflow ID (history JSON does not hold it)
MANIFEST_NAME = MANIFEST.name  # a later recording's manifest, inside its directory
WORKFLOW_TYPES = ("HeadScan", "Scheduler", "IndexRange")
PATCH_MARKER = "core_patch"  # the marker `workflow.patched` records, as the SDK's core names it
PATCH_DATA = "patch-data"  # its details key: JSON {"id": …, "deprecated": …}


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
    if kind == EventType.EVENT_TYPE_MARKER_RECORDED:
        return _marker(event)
    return {
        EventType.EVENT_TYPE_TIMER_STARTED: "timer",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continue_as_new",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    }.get(kind, "")


def _marker(event: HistoryEvent) -> str:
    """`patch:<id>` for a `workflow.patched` marker, else the marker's name."""
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != PATCH_MARKER:
        return f"marker:{attributes.marker_name}"
    payloads = attributes.details[PATCH_DATA].payloads
    return f"patch:{json.loads(payloads[0].data)['id']}" if payloads else "patch:"


def recording_dirs() -> list[tuple[Path, Path]]:
    """(directory, manifest) of every recording, the first one first."""
    later = sorted(path.parent for path in HISTORIES.glob(f"*/{MANIFEST_NAME}"))
    return [(HISTORIES, MANIFEST)] + [(path, path / MANIFEST_NAME) for path in later]


def load(skip: Path | None = None) -> list[Recorded]:
    """Every history named in a manifest (but those of the recording in `skip`); a history file
    its manifest misses is an error. `Recorded.file` is the path under histories/."""
    recorded = []
    for directory, manifest_path in recording_dirs():
        if directory == skip:
            continue
        manifest = json.loads(manifest_path.read_text())
        listed = {entry["file"]: entry["workflow_id"] for entry in manifest["histories"]}
        on_disk = {path.name for path in directory.glob("*.json")} - {MANIFEST_NAME}
        if on_disk != set(listed):
            unlisted, missing = sorted(on_disk - set(listed)), sorted(set(listed) - on_disk)
            raise ValueError(
                f"{directory.name}/ and its {MANIFEST_NAME} disagree: not in the manifest"
                f" {unlisted}, no such file {missing}"
            )
        prefix = "" if directory == HISTORIES else f"{directory.name}/"
        recorded += [
            Recorded(
                f"{prefix}{name}",
                WorkflowHistory.from_json(workflow_id, (directory / name).read_text()),
            )
            for name, workflow_id in sorted(listed.items())
        ]
    return recorded


def coverage_gaps(recorded: list[Recorded]) -> list[str]:
    """The paths of each workflow that no committed history takes; empty when all are covered."""
    by_type: dict[str, Counter[str]] = {name: Counter() for name in WORKFLOW_TYPES}
    for item in recorded:
        by_type.setdefault(item.workflow_type, Counter()).update(commands(item.history))
    # A path only older code took (the Scheduler's timer, before its bounded-history patch)
    # stays wanted: its histories are kept, and runs that took it must still replay.
    wanted = {
        "HeadScan": [
            "activity:scan_head",
            "activity:start_ranges",
            "activity:start_scheduler",
            "continue_as_new",
            f"patch:{HEADSCAN_BOUNDED_HISTORY}",
        ],
        "Scheduler": [
            "activity:scheduler_tick",
            "activity:start_ranges",
            "timer",
            f"patch:{SCHEDULER_BOUNDED_HISTORY}",
        ],
        "IndexRange": ["activity:index_range", "completed", f"patch:{INDEX_RANGE_OWN_QUEUE}"],
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
