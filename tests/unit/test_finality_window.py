"""The reorg window above the final block: (max(finalized, head - max_reorg_depth), head]."""

from __future__ import annotations

import asyncio

import pytest

from indexer.activities.reorg import (
    ForkBelowFinality,
    ForkDeeperThanWindow,
    fork_start,
    window_low,
)
from indexer.activities.reorg_watch import final_block
from indexer.config import ChainConfig

STORED = {n: bytes([1]) * 32 for n in range(90, 101)}


def fork(start: int) -> dict[int, bytes]:
    return {n: (bytes([2]) * 32 if n >= start else h) for n, h in STORED.items()}


@pytest.mark.parametrize(
    ("head", "depth", "finalized", "low"),
    [
        (100, 64, None, 37),  # nothing final: max_reorg_depth alone, as before the knob
        (100, 64, 36, 37),  # anvil's finalized (head - 64) is the same window
        (100, 64, 68, 69),  # anvil's safe (head - 32) narrows it
        (100, 10, 50, 91),  # a final block below the window changes nothing
        (100, 64, 100, 101),  # everything final: nothing may be repaired
        (100, 64, 150, 101),  # a final block above the head counts as the head
        (5, 64, None, 0),  # a young chain: from block 0
        (5, 64, -1, 0),
    ],
)
def test_window_low(head: int, depth: int, finalized: int | None, low: int) -> None:
    assert window_low(head, depth, finalized) == low


def test_a_fork_above_the_final_block_is_repaired() -> None:
    assert fork_start(STORED, fork(95), low=91, finalized=90) == 95


def test_a_fork_reaching_the_final_block_is_refused_not_repaired() -> None:
    with pytest.raises(ForkBelowFinality, match=r"block 90 differs .* final block 90"):
        fork_start(STORED, fork(90), low=91, finalized=90)


def test_a_changed_final_block_is_refused_even_when_the_window_agrees() -> None:
    provider = {**STORED, 90: bytes([2]) * 32}
    with pytest.raises(ForkBelowFinality):
        fork_start(STORED, provider, low=91, finalized=90)


def test_a_fork_below_the_window_but_above_the_final_block_is_too_deep() -> None:
    with pytest.raises(ForkDeeperThanWindow, match=r"blocks 90\.\.91 differ"):
        fork_start(STORED, fork(90), low=91, finalized=80)


class NoRpc:
    """A client that must not be asked (finality by depth, or unset)."""

    async def tagged_block(self, tag: str) -> int | None:
        raise AssertionError(f"asked for the {tag} block")


class Tags:
    def __init__(self, answers: dict[str, int | None]) -> None:
        self.answers = answers

    async def tagged_block(self, tag: str) -> int | None:
        return self.answers[tag]


def config(finality: str | int | None) -> ChainConfig:
    return ChainConfig(name="c", rpc_url="http://localhost:1", finality=finality)


@pytest.mark.parametrize(
    ("finality", "head", "final"),
    [(None, 100, None), (0, 100, 100), (12, 100, 88), (12, 11, None), (12, 12, 0)],
)
def test_final_block_by_depth_asks_nothing(
    finality: int | None, head: int, final: int | None
) -> None:
    got = asyncio.run(final_block(NoRpc(), config(finality), head))  # type: ignore[arg-type]
    assert got == final


def test_final_block_by_tag_is_never_above_the_head_and_falls_back_when_missing() -> None:
    rpc = Tags({"finalized": 36, "safe": 120})
    assert asyncio.run(final_block(rpc, config("finalized"), 100)) == 36  # type: ignore[arg-type]
    assert asyncio.run(final_block(rpc, config("safe"), 100)) == 100  # type: ignore[arg-type]
    missing = Tags({"finalized": None})
    assert asyncio.run(final_block(missing, config("finalized"), 100)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["latest", -1, 10_001, 1.5])
def test_finality_rejects_other_values(bad: object) -> None:
    with pytest.raises(ValueError):
        config(bad)  # type: ignore[arg-type]
