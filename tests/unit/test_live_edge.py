"""Which blocks the head scan indexes itself (activities/live_edge.edge_gap), and the pace of
its following (follow): pure logic, on a clock of the test's own."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from indexer.activities import live_edge
from indexer.activities.chain_cache import knobs
from indexer.activities.live_edge import edge_gap
from indexer.config import ChainConfig
from indexer.workflows.inputs import ScanResult


@pytest.mark.parametrize(
    ("gaps", "handed", "edge"),
    [
        ([], -1, None),  # nothing missing
        ([(90, 100)], -1, (90, 100)),  # 11 new blocks at the head
        ([(10, 20), (99, 100)], -1, (99, 100)),  # a hole below stays for IndexRange
        ([(10, 20)], -1, None),  # a hole, not the head
        ([(60, 100)], -1, None),  # 41 blocks: wider than the live edge
        ([(60, 100)], 80, (81, 100)),  # blocks up to 80 were handed to a range
        ([(60, 100)], 100, None),  # all of them were
        ([(69, 100)], -1, (69, 100)),  # exactly 32
    ],
)
def test_edge_gap(gaps: list[tuple[int, int]], handed: int, edge: tuple[int, int] | None) -> None:
    assert edge_gap(gaps, head=100, live_edge_blocks=32, handed=handed) == edge


def test_a_zero_live_edge_takes_nothing() -> None:
    assert edge_gap([(100, 100)], head=100, live_edge_blocks=0) is None


def test_follow_begins_scans_an_interval_apart_whatever_each_scan_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A clock of our own: each scan takes 0.4 s of a 0.5 s interval, so the follower waits
    0.1 s between scans (not 0.5 s, which made the poll period drift against the blocks), and
    stops before a scan would begin past FOLLOW_SECONDS."""
    clock = [1000.0]
    waits: list[float] = []
    scans: list[float] = []

    async def scan() -> ScanResult:
        scans.append(clock[0])
        clock[0] += 0.4
        config = ChainConfig(name="c", rpc_url="http://x:1", head_poll_interval_seconds=0.5)
        return ScanResult(head=1, missing_blocks=0, gaps=[], knobs=knobs(config))

    async def stops_within(seconds: float) -> bool:
        waits.append(round(seconds, 6))
        clock[0] += seconds
        return False

    monkeypatch.setattr(live_edge, "FOLLOW_SECONDS", 2.0)
    monkeypatch.setattr(live_edge, "monotonic", lambda: clock[0])
    monkeypatch.setattr(live_edge, "worker_stops_within", stops_within)
    monkeypatch.setattr(live_edge, "heartbeating", contextlib.nullcontext)

    asyncio.run(live_edge.follow(scan))

    assert [round(at - 1000.0, 6) for at in scans] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert waits == [0.1, 0.1, 0.1, 0.1]
