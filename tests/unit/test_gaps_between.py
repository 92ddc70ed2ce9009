"""The one gap walk behind coverage and the gaps pages: the holes around stored ranges."""

from __future__ import annotations

from indexer.store.ranges import gaps_between


def test_holes_before_between_and_after_the_ranges() -> None:
    assert gaps_between([(10, 19), (30, 39)], 5, 50) == [(5, 9), (20, 29), (40, 50)]


def test_ranges_at_both_ends_leave_only_the_holes_between() -> None:
    assert gaps_between([(5, 19), (30, 50)], 5, 50) == [(20, 29)]


def test_no_ranges_is_one_hole() -> None:
    assert gaps_between([], 5, 50) == [(5, 50)]


def test_a_page_of_ranges_reports_no_hole_after_its_last() -> None:
    # What follows (30, 39) was not read: the hole 40..50 may be cut by a range further on.
    assert gaps_between([(10, 19), (30, 39)], 5, 50, complete=False) == [(5, 9), (20, 29)]
