"""Which blocks the head scan indexes itself (activities/live_edge.edge_gap): pure logic."""

from __future__ import annotations

import pytest

from indexer.activities.live_edge import edge_gap


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
