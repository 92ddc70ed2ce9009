"""Which blocks the head scan indexes itself (activities/live_edge.edge_gap): pure logic."""

from __future__ import annotations

import pytest

from indexer.activities import live_edge
from indexer.activities.live_edge import QUIET_LOOK_SECONDS, QuietHeads, edge_gap
from indexer.workflows.inputs import Knobs, Range, ScanResult


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


def quiet_result(gaps: list[Range], reorg_depth: int = 0) -> ScanResult:
    knobs = Knobs(100, 10, 4, 1000, 100, 8, 0.5, 10, live_edge_blocks=32)
    return ScanResult(head=9, missing_blocks=0, gaps=gaps, knobs=knobs, reorg_depth=reorg_depth)


def test_a_head_that_has_not_moved_is_not_looked_at_again_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(live_edge.time, "monotonic", lambda: now[0])
    quiet = QuietHeads()
    quiet.looked("a", 9, b"h9", quiet_result([], reorg_depth=2))
    same = quiet.unchanged("a", 9, b"h9")
    assert same is not None and same.reorg_depth == 0  # the repair was reported by its look
    assert quiet.unchanged("b", 9, b"h9") is None  # another chain
    now[0] += QUIET_LOOK_SECONDS + 0.1
    assert quiet.unchanged("a", 9, b"h9") is None  # too long ago: a full look
    assert quiet.unchanged("a", 9, b"h9") is None  # and it was forgotten


@pytest.mark.parametrize(
    ("served", "tip_hash"), [(10, b"h10"), (9, b"other"), (9, None), (8, b"h9")]
)
def test_a_moved_forked_or_unhashed_head_is_looked_at(served: int, tip_hash: bytes | None) -> None:
    quiet = QuietHeads()
    quiet.looked("a", 9, b"h9", quiet_result([]))
    assert quiet.unchanged("a", served, tip_hash) is None
    assert quiet.unchanged("a", 9, b"h9") is None  # a changed head forgets the look


def test_a_look_that_left_gaps_or_had_no_hash_is_not_remembered() -> None:
    quiet = QuietHeads()
    quiet.looked("a", 9, b"h9", quiet_result([Range(0, 3)]))
    quiet.looked("b", 9, None, quiet_result([]))
    assert quiet.unchanged("a", 9, b"h9") is None
    assert quiet.unchanged("b", 9, None) is None
