"""Which head claims are adopted and which forks are confirmed (indexer/chain/witness.py)."""

from __future__ import annotations

from indexer.chain.witness import Claim, growth_allowance, judge_fork, verify_heads

LIE = 2**63 - 3  # a glitching eth_blockNumber after the head-1 rule
TIP = b"\x01" * 32


def claim(provider: str, head: int, served: bool = False) -> Claim:
    return Claim(provider, head, TIP if served else None, max_lag=16)


def test_a_lone_unserved_lie_beside_an_honest_head_is_rejected() -> None:
    verdict = verify_heads([claim("honest", 1_000, True), claim("liar", LIE)], 990, 84)
    assert (verdict.head, [c.provider for c in verdict.rejected]) == (1_000, ["liar"])


def test_a_lie_is_rejected_even_without_history_and_the_honest_head_stands() -> None:
    verdict = verify_heads([claim("liar", LIE), claim("honest", 1_000)], None, 64)
    assert verdict.head == 1_000 and [c.provider for c in verdict.rejected] == ["liar"]


def test_a_served_head_far_ahead_of_a_lagging_provider_is_adopted() -> None:
    verdict = verify_heads([claim("ahead", 3_000, True), claim("behind", 2_900)], None, 64)
    assert verdict.head == 3_000 and verdict.digest == TIP and not verdict.rejected


def test_a_head_witnessed_by_another_provider_within_its_lag_is_adopted() -> None:
    verdict = verify_heads([claim("a", 1_010), claim("b", 1_000)], None, 64)
    assert verdict.head == 1_010 and not verdict.rejected


def test_plausible_growth_needs_no_witness_and_grows_with_time() -> None:
    assert growth_allowance(0) == 64 and growth_allowance(10) == 264
    verdict = verify_heads([claim("a", 1_200), claim("b", 1_000)], 1_000, growth_allowance(10))
    assert verdict.head == 1_200
    verdict = verify_heads([claim("a", 1_300), claim("b", 1_000)], 1_000, growth_allowance(10))
    assert verdict.head == 1_000 and [c.provider for c in verdict.rejected] == ["a"]


def test_a_lone_provider_is_believed_when_it_serves_its_head() -> None:
    assert verify_heads([claim("only", 5_000, True)], 100, 64).head == 5_000


STORED, PARENT, NEW = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32


def test_a_fork_seen_by_one_of_three_providers_is_not_confirmed() -> None:
    answers = {"minority": (NEW, PARENT), "one": (STORED, PARENT), "two": (STORED, PARENT)}
    verdict = judge_fork(10, STORED, PARENT, answers)
    assert not verdict.confirmed
    assert (verdict.new_branch, verdict.stored_branch) == (("minority",), ("one", "two"))


def test_a_fork_seen_by_most_providers_or_the_only_one_is_confirmed() -> None:
    answers = {"a": (NEW, PARENT), "b": (NEW, PARENT), "c": (STORED, PARENT)}
    assert judge_fork(10, STORED, PARENT, answers).confirmed
    assert judge_fork(10, STORED, PARENT, {"only": (NEW, PARENT)}).confirmed


def test_a_new_branch_not_linked_to_the_common_ancestor_does_not_count() -> None:
    answers = {"a": (NEW, b"\xff" * 32), "b": None}
    verdict = judge_fork(10, STORED, PARENT, answers)
    assert not verdict.confirmed and verdict.new_branch == ()
