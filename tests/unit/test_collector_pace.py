"""A slow refresh spaces out the next one: a collector takes at most a fifth of the time."""

from __future__ import annotations

import pytest

from exporter.collectors.base import BUSY_SHARE, pause_after


@pytest.mark.parametrize(("interval", "took"), [(2.0, 0.01), (2.0, 0.5), (5.0, 1.0)])
def test_a_quick_refresh_waits_its_interval(interval: float, took: float) -> None:
    assert pause_after(interval, took) == interval


@pytest.mark.parametrize("took", [0.6, 1.0, 3.0])
def test_a_slow_refresh_keeps_to_its_share_of_the_time(took: float) -> None:
    pause = pause_after(2.0, took)
    assert pause > 2.0
    assert took / (took + pause) == pytest.approx(BUSY_SHARE)
