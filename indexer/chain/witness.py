"""Providers as witnesses: which head to believe, and whether a fork is real.

A head a provider reports is a claim. It is adopted when the provider served the block at it
(eth_getBlockByNumber answered with a hash: a glitching eth_blockNumber cannot invent one),
when another provider's head witnesses it (at most the claimant's max_head_lag below), or
when it is within what the chain can plausibly have grown since the last verified head. The
chain's head is the highest adopted claim; the others are reported and their providers
demoted. A fork is deleted only when the new branch is seen by more providers than the stored
one, or by the only provider that answered.
"""

from __future__ import annotations

from dataclasses import dataclass

# A head this far above the last verified one needs no witness ...
HEAD_GROWTH_BLOCKS = 64
# ... plus this many blocks per second since it was verified (4 blocks/s chains, 5x margin).
HEAD_GROWTH_PER_SECOND = 20.0


@dataclass(frozen=True)
class Claim:
    """A provider's latest available block, and its hash when the provider served it."""

    provider: str
    head: int
    digest: bytes | None
    max_lag: int  # another provider this far below still witnesses it


@dataclass(frozen=True)
class HeadVerdict:
    head: int
    digest: bytes | None
    rejected: tuple[Claim, ...]  # claims not adopted, highest first


def growth_allowance(seconds_since_verified: float) -> int:
    """How far above the last verified head a claim may be without a witness."""
    return HEAD_GROWTH_BLOCKS + int(HEAD_GROWTH_PER_SECOND * max(0.0, seconds_since_verified))


def verify_heads(claims: list[Claim], last_verified: int | None, allowance: int) -> HeadVerdict:
    """The highest claim that is served, witnessed or plausible; when none is, the lowest
    claim (a head can be inflated, not deflated, by a lie: lagging is no harm)."""
    if not claims:
        raise ValueError("no head claims to verify")

    def adopted(claim: Claim) -> bool:
        if claim.digest is not None:
            return True
        if last_verified is not None and claim.head <= last_verified + allowance:
            return True
        others = (other for other in claims if other.provider != claim.provider)
        return any(other.head >= claim.head - claim.max_lag for other in others)

    kept = [claim for claim in claims if adopted(claim)] or [min(claims, key=lambda c: c.head)]
    best = max(kept, key=lambda claim: claim.head)
    rejected = sorted(
        (claim for claim in claims if claim not in kept), key=lambda c: c.head, reverse=True
    )
    return HeadVerdict(best.head, best.digest, tuple(rejected))


@dataclass(frozen=True)
class ForkVerdict:
    """Whether to delete for a fork at `number`: the providers on each side."""

    confirmed: bool
    new_branch: tuple[str, ...]  # providers whose block differs from the stored one
    stored_branch: tuple[str, ...]  # providers that answer the stored block


def judge_fork(
    number: int,
    stored_hash: bytes,
    parent_hash: bytes | None,
    answers: dict[str, tuple[bytes, bytes] | None],
) -> ForkVerdict:
    """`answers`: each provider's (hash, parentHash) of block `number`, None if it has none.
    A new branch counts only linked to the common ancestor (`parent_hash`, the stored block
    below, when there is one). Confirmed when more providers are on the new branch than on
    the stored one; a lone answering provider decides alone (nobody can witness it)."""
    new_branch = tuple(
        name
        for name, link in answers.items()
        if link is not None
        and link[0] != stored_hash
        and (parent_hash is None or link[1] == parent_hash)
    )
    stored_branch = tuple(
        name for name, link in answers.items() if link is not None and link[0] == stored_hash
    )
    confirmed = len(new_branch) > len(stored_branch)
    return ForkVerdict(confirmed, new_branch, stored_branch)
