"""A worker collects cyclic garbage on a clock: none by allocation counts, every cycle soon."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from indexer import garbage
from indexer.garbage import collected_on_a_clock


class Node:
    def __init__(self) -> None:
        self.itself = self  # a cycle: only the collector frees it


def allocate_many() -> None:
    """Far more container allocations than a young collection waits for (700)."""
    kept = [[] for _ in range(50_000)]
    del kept


async def test_cycles_are_collected_by_the_clock_not_by_allocations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(garbage, "YOUNG_SECONDS", 0.2)
    assert gc.isenabled()
    async with collected_on_a_clock():
        assert not gc.isenabled()
        collected = asyncio.Event()
        weakref.finalize(Node(), collected.set)
        allocate_many()
        assert not collected.is_set()  # allocations alone collect nothing
        async with asyncio.timeout(5):
            await collected.wait()
    assert gc.isenabled()


async def test_cycles_that_outlive_a_young_collection_go_in_the_full_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(garbage, "YOUNG_SECONDS", 0.05)
    monkeypatch.setattr(garbage, "FULL_EVERY", 4)
    async with collected_on_a_clock():
        node = Node()
        collected = asyncio.Event()
        weakref.finalize(node, collected.set)
        gc.collect(1)  # survives into the oldest generation, as a long-lived batch would
        del node
        async with asyncio.timeout(5):
            await collected.wait()


async def test_collection_already_off_is_left_off() -> None:
    gc.disable()
    try:
        async with collected_on_a_clock():
            collected = asyncio.Event()
            weakref.finalize(Node(), collected.set)
            await asyncio.sleep(garbage.YOUNG_SECONDS * 1.5)
            assert not collected.is_set()
        assert not gc.isenabled()
    finally:
        gc.enable()
