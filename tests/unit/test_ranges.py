"""Range arithmetic used by the workflows: aligned, complete, never overlapping."""

from __future__ import annotations

from indexer.temporal_client import index_range_id
from indexer.workflows.inputs import Range
from indexer.workflows.ranges import aligned_ranges, clip, take_ranges


def test_aligned_ranges_cut_at_multiples_of_the_size() -> None:
    gaps = [Range(5, 23), Range(40, 41)]
    assert list(aligned_ranges(gaps, 10)) == [
        Range(5, 9),
        Range(10, 19),
        Range(20, 23),
        Range(40, 41),
    ]


def test_the_same_block_always_lands_in_the_same_index_range_id() -> None:
    whole = {index_range_id("c", r, 10) for r in aligned_ranges([Range(0, 99)], 10)}
    assert index_range_id("c", Range(30, 39), 10) in whole
    assert len(whole) == 10


def test_what_is_left_of_a_running_range_has_its_id() -> None:
    """A range stores batch by batch: the gap a scan finds in the middle of it (or a range cut
    short by the head) must join the running one, not start a second run over its blocks."""
    assert index_range_id("c", Range(2_587, 3_999), 2_000) == "index:c:2000-3999"
    assert index_range_id("c", Range(2_000, 2_004), 2_000) == "index:c:2000-3999"
    assert index_range_id("c", Range(4_000, 4_000), 2_000) == "index:c:4000-5999"


def test_take_ranges_returns_the_rest_of_the_backlog_without_loss() -> None:
    gaps = [Range(0, 24), Range(30, 34)]
    taken, rest = take_ranges(gaps, 10, 2)
    assert taken == [Range(0, 9), Range(10, 19)]
    assert rest == [Range(20, 24), Range(30, 34)]
    taken, rest = take_ranges(rest, 10, 5)
    assert taken == [Range(20, 24), Range(30, 34)]
    assert rest == []


def test_clip_keeps_only_the_window() -> None:
    assert clip([Range(0, 9), Range(20, 29)], 5, 22) == [Range(5, 9), Range(20, 22)]
    assert clip([Range(0, 9)], 10, 20) == []
