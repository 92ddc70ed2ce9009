"""The live edge: the few newest blocks of a chain indexed by its head scan, not by IndexRange.

One IndexRange workflow per new block costs a workflow start, a workflow task, an activity and
their history events for every block of every chain: 50 chains at a block a second saturate the
Temporal server of a 2-core machine. A gap that ends at the head and holds at most the chain's
`live_edge_blocks` is therefore indexed inside the scan_head activity, by the very code of
IndexRange (IndexRangeActivities.index_blocks: coverage, stream, store, link checks), after the
scan's reorg repair; its blocks land in indexed_ranges in the same transactions as their rows.
A larger gap, a backfill or a hole below the head goes to IndexRange workflows as before. A
crash mid-way loses nothing: what was committed is recorded, the rest is a gap the next scan
finds.

The scan also follows the head for a while (FOLLOW_SECONDS) instead of returning after one look,
so HeadScan's history grows by one activity and one timer per FOLLOW_SECONDS, not per poll:
sub-second head_poll_interval_seconds cost Temporal nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from indexer.activities.heartbeat import heartbeating, worker_stops_within
from indexer.activities.index_range import IndexRangeActivities
from indexer.workflows.inputs import IndexRangeInput, ScanResult

# How long one scan_head activity follows the head while nothing is left for IndexRange: a
# sixtieth of an activity per block at a block a second. Between two activities the head goes
# unwatched for a timer and a few Temporal round trips: at 10 s (10 chains at 0.25 s) live lag
# p99 was 4 blocks, at 60 s 2, and Temporal's CPU at 100 chains fell from 0.28 to 0.11 core
# (bench/chains.py). Knob changes still apply at the next poll (the chain cache reloads within
# 2 s); a worker that stops ends the following at once; the last scan keeps a minute of the
# scan's start-to-close timeout (policies.SCAN_TIMEOUT, 2 min) for the edge's own indexing.
FOLLOW_SECONDS = 60.0

# A followed chain whose head (number and hash) has not moved since a look that left nothing to
# do (no gap, and the provider not behind the chain's head: a lagging provider's every look is
# counted, tindexer_rpc_head_regressions_total) is not looked at again for this long: its head
# is asked for (eth_blockNumber and that block's header), but the reorg check, the head's
# store, coverage and the edge (several PostgreSQL round trips) are skipped. A poll that finds
# no new block then costs PostgreSQL nothing. (Even so, two polls per block at 100 chains x 1 s
# cost the workers 0.96 core against 0.78 for one: bench/results/chains-polls-*.json.) A change
# made behind the scan's back (rows deleted by hand) is seen within this time.
QUIET_LOOK_SECONDS = 5.0


def edge_gap(
    gaps: Sequence[tuple[int, int]], head: int, live_edge_blocks: int, handed: int = -1
) -> tuple[int, int] | None:
    """The blocks the live edge indexes: those of the gap ending at the head above `handed`
    (the newest block already handed to IndexRange), if they are that few."""
    if not gaps:
        return None
    start, end = gaps[-1]
    start = max(start, handed + 1)
    if end != head or start > end or end - start + 1 > live_edge_blocks:
        return None
    return start, end


@dataclass(frozen=True)
class _Look:
    served: int
    tip_hash: bytes
    result: ScanResult
    at: float


class QuietHeads:
    """Per chain, the last look that found the head followed and nothing left to do: a look
    at the same head (same hash) within QUIET_LOOK_SECONDS has the same result."""

    def __init__(self) -> None:
        self._looks: dict[str, _Look] = {}

    def unchanged(self, chain: str, served: int, tip_hash: bytes | None) -> ScanResult | None:
        """The last look's result if the head is the one it saw, recently; else forget it.
        Without a hash (the head-1 rule applied) a same-height reorg could hide: never."""
        look = self._looks.pop(chain, None)
        if (
            look is None
            or tip_hash is None
            or (served, tip_hash) != (look.served, look.tip_hash)
            or time.monotonic() - look.at > QUIET_LOOK_SECONDS
        ):
            return None
        self._looks[chain] = look
        return look.result

    def looked(self, chain: str, served: int, tip_hash: bytes | None, result: ScanResult) -> None:
        """Remember a full look that left no gap."""
        if tip_hash is not None and not result.gaps:
            quiet = replace(result, reorg_depth=0)  # a repair is reported once
            self._looks[chain] = _Look(served, tip_hash, quiet, time.monotonic())


class LiveEdge:
    """Indexes a chain's newest blocks through IndexRange's code, and counts them.

    It remembers, per chain, the newest block it left to IndexRange workflows, and leaves the
    blocks up to it to them: a range started for a large gap at the head is not raced by the
    live edge for the blocks it was started for. The memory is this worker's: a scan on
    another worker, or after a restart, may index a block a range is indexing too, which costs
    the work twice and changes nothing stored (store_batch upserts under the range lock).
    """

    def __init__(self, ranges: IndexRangeActivities) -> None:
        self.ranges = ranges
        self.metrics = ranges.metrics
        self._handed: dict[str, int] = {}

    async def index(
        self, chain: str, gaps: list[tuple[int, int]], head: int, live_edge_blocks: int
    ) -> tuple[list[tuple[int, int]], int]:
        """Index the newest blocks of `gaps` if they are few; the gaps left for IndexRange
        workflows, and how many blocks the edge took."""
        edge = edge_gap(gaps, head, live_edge_blocks, self._handed.get(chain, -1))
        left = gaps
        if edge is not None:
            result = await self.ranges.index_blocks(IndexRangeInput(chain, *edge))
            self.metrics.live_edge_blocks.labels(chain).inc(result.blocks)
            start = gaps[-1][0]
            left = gaps[:-1] + ([(start, edge[0] - 1)] if start < edge[0] else [])
        if left:
            self._handed[chain] = max(self._handed.get(chain, -1), left[-1][1])
        return left, 0 if edge is None else edge[1] - edge[0] + 1


async def follow(scan: Callable[[], Awaitable[ScanResult]]) -> ScanResult:
    """Scan, and scan again every head_poll_interval_seconds while no gap is left for
    IndexRange, for up to FOLLOW_SECONDS; the last scan's result. HeadScan waits the interval
    after it as after any scan. A worker beginning to stop ends the following at once."""
    deadline = time.monotonic() + FOLLOW_SECONDS
    async with heartbeating():  # the waits between scans too
        while True:
            result = await scan()
            interval = result.knobs.head_poll_interval_seconds
            if (
                result.gaps
                or result.knobs.live_edge_blocks == 0
                or time.monotonic() + interval > deadline
                or await worker_stops_within(interval)
            ):
                return result
