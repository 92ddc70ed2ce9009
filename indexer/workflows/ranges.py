"""Pure range arithmetic for workflows: aligned ranges give deterministic workflow IDs.

The IDs themselves are `indexer.temporal_client.index_range_id`.
"""

from __future__ import annotations

from collections.abc import Iterator

from indexer.workflows.inputs import Range


def slot_of(block: int, size: int) -> Range:
    """The aligned `size` blocks holding `block`: a range never crosses one, and is named by it."""
    first = block // size * size
    return Range(first, first + size - 1)


def aligned_ranges(gaps: list[Range], size: int) -> Iterator[Range]:
    """Cut gaps at multiples of `size`, so a block always falls in the same range ID."""
    for gap in gaps:
        start = gap.start
        while start <= gap.end:
            end = min(slot_of(start, size).end, gap.end)
            yield Range(start, end)
            start = end + 1


def take_ranges(gaps: list[Range], size: int, count: int) -> tuple[list[Range], list[Range]]:
    """The first `count` aligned ranges of `gaps`, and the gaps that remain after them."""
    taken: list[Range] = []
    for block_range in aligned_ranges(gaps, size):
        if len(taken) == count:
            break
        taken.append(block_range)
    if not taken:
        return [], []
    last = taken[-1].end
    remaining = [Range(max(gap.start, last + 1), gap.end) for gap in gaps if gap.end > last]
    return taken, remaining


def clip(gaps: list[Range], low: int, high: int) -> list[Range]:
    """The parts of `gaps` inside low..high."""
    return [
        Range(max(gap.start, low), min(gap.end, high))
        for gap in gaps
        if gap.end >= low and gap.start <= high
    ]
