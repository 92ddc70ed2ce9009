"""The Scheduler's wait for room while full: doubling from 1 s, capped at 30 s."""

from __future__ import annotations

from indexer.workflows.scheduler import FULL_WAIT_MAX, next_full_wait


def test_the_wait_for_room_doubles_from_one_second_up_to_its_cap() -> None:
    waits, wait = [], 0.0
    for _ in range(8):
        wait = next_full_wait(wait)
        waits.append(wait)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert FULL_WAIT_MAX == 30.0
