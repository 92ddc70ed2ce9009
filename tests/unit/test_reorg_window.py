"""Where a fork starts in the reorg window, and when it is too deep to repair (pure logic)."""

from __future__ import annotations

import pytest

from indexer.activities.reorg import ForkDeeperThanWindow, check_hashes, fork_start
from indexer.chain.model import BadChainData

OLD = {n: bytes([1]) * 32 for n in range(90, 101)}  # stored: blocks 90..100, window from 91


def fork(start: int) -> dict[int, bytes]:
    """The provider's hashes: a fork replacing `start` and above."""
    return {n: (bytes([2]) * 32 if n >= start else h) for n, h in OLD.items()}


def test_no_fork() -> None:
    assert fork_start(OLD, dict(OLD), low=91) is None


@pytest.mark.parametrize("start", [91, 95, 100])
def test_a_fork_inside_the_window_starts_at_its_first_differing_block(start: int) -> None:
    assert fork_start(OLD, fork(start), low=91) == start


def test_a_fork_that_replaced_the_block_below_the_window_is_refused() -> None:
    with pytest.raises(ForkDeeperThanWindow, match=r"blocks 90\.\.91 differ"):
        fork_start(OLD, fork(90), low=91)


def test_a_block_below_the_window_alone_is_no_fork_to_repair() -> None:
    """Its child in the window agrees: nothing in the window is to be replaced."""
    assert fork_start(OLD, {**OLD, 90: bytes([2]) * 32}, low=91) is None


def test_without_a_stored_block_below_the_window_a_fork_at_its_bottom_is_repaired() -> None:
    stored = {n: h for n, h in OLD.items() if n != 90}
    assert fork_start(stored, fork(90), low=91) == 91


@pytest.mark.parametrize("size", [0, 31, 33])
def test_a_header_hash_that_is_not_32_bytes_is_bad_data(size: int) -> None:
    with pytest.raises(BadChainData, match=f"block 7: header hash of {size} bytes, not 32"):
        check_hashes({6: bytes(32), 7: bytes(size)})
