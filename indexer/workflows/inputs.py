"""The one-dataclass inputs and results of every workflow and activity."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Range:
    """Blocks start..end, inclusive."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1


@dataclass
class Knobs:
    """The scheduling knobs of a chain, read from its stored configuration on every scan."""

    blocks_per_workflow: int
    scheduler_batch_size: int
    parallelism: int
    continue_as_new_threshold: int
    catchup_threshold: int
    max_inflight_ranges: int
    head_poll_interval_seconds: float
    index_max_attempts: int
    live_edge_blocks: int = 0  # 0 in scan results recorded before the live edge existed


@dataclass
class IndexRangeInput:
    chain: str
    start: int
    end: int
    max_attempts: int = 10


@dataclass
class IndexRangeResult:
    blocks: int
    transactions: int
    skipped: bool = False
    logs: int = 0


@dataclass(frozen=True)
class HistoryBounds:
    """How long one run of a long-running workflow grows before it continues as new, besides the
    server's own suggestion: Temporal refuses a history past 51,200 events or 50 MB. The defaults
    are the server's default suggestion points, for servers configured to suggest later or never.
    """

    max_events: int = 4_096
    max_bytes: int = 4 * 1024 * 1024


@dataclass
class HeadScanInput:
    """Also the state carried across ContinueAsNew."""

    chain: str
    scans: int = 0
    history: HistoryBounds = field(default_factory=HistoryBounds)


@dataclass
class ScanHeadInput:
    chain: str
    # Set by HeadScan runs from the headscan-live-edge patch on: the scan indexes a small gap at
    # the head itself and follows the head for a while (activities/live_edge.py).
    live_edge: bool = False


@dataclass
class ScanResult:
    head: int
    missing_blocks: int
    gaps: list[Range]
    knobs: Knobs
    reorg_depth: int = 0


@dataclass
class StartRangesInput:
    chain: str
    ranges: list[Range]
    mode: str  # "direct" or "scheduler"
    parallelism: int
    max_attempts: int = 10


@dataclass
class StartRangesResult:
    started: int


@dataclass
class SchedulerInput:
    """Also the state carried across ContinueAsNew: the backlog not yet started."""

    chain: str
    gaps: list[Range]
    runs: int = 0
    history: HistoryBounds = field(default_factory=HistoryBounds)
    full_wait_seconds: float = 0.0  # the wait for room it had reached, so a new run goes on


@dataclass
class SchedulerTickInput:
    chain: str
    first_of_continued_run: bool = False
    # Up to this long, the tick waits for an unfinished range to end before it answers: the
    # Scheduler's history then grows by one activity per wait, not one tick per second.
    wait_for_room_seconds: float = 0.0


@dataclass
class SchedulerTick:
    inflight: int
    knobs: Knobs
