"""What the simulated chain's blocks hold: the `default` profile (a few cheap transactions, so
it serves 50,000+ blocks/s) and `mainnet` (about the size and mix of an Ethereum block)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """How a block's content is drawn. Averages are over every transaction of a block."""

    name: str
    txs_per_block: int
    # Distinct block contents before they repeat (a power of two): a block's content is
    # drawn once per pool slot and then only its hashes, number and timestamp change.
    pool_blocks: int
    type_weights: tuple[int, int, int, int]  # transaction types 0 (legacy), 1, 2, 3 (blob)
    plain_transfer_ratio: float  # no calldata, no logs, 21,000 gas
    creation_ratio: float  # `to` null, init code as input, a contractAddress in the receipt
    revert_ratio: float  # of calls: status 0, no logs
    call_words_mean: float  # calldata of a call: a 4-byte selector and ~Exp(mean) 32-byte words
    call_words_max: int
    init_code_bytes: tuple[int, int]  # a creation's input length, uniform in [low, high]
    log_counts: tuple[int, ...]  # logs of a successful call, drawn uniformly from these
    withdrawals_per_block: int
    total_difficulty: bool  # geth dropped totalDifficulty from blocks in 1.14


DEFAULT = Profile(
    name="default",
    txs_per_block=3,
    pool_blocks=256,  # drawn in ~0.1 s, ~3 MB of templates
    type_weights=(15, 5, 77, 3),
    plain_transfer_ratio=0.2,
    creation_ratio=0.02,
    revert_ratio=0.04,
    call_words_mean=1.5,
    call_words_max=8,
    init_code_bytes=(60, 400),
    log_counts=(1, 1, 1, 2, 2, 3),  # 1.67 per call, about 1.3 per transaction
    withdrawals_per_block=2,
    total_difficulty=True,
)

MAINNET = Profile(
    name="mainnet",
    txs_per_block=150,
    pool_blocks=64,  # ~0.6 MB of templates per distinct block
    type_weights=(8, 1, 88, 3),
    plain_transfer_ratio=0.15,
    creation_ratio=0.01,
    revert_ratio=0.03,
    call_words_mean=11.3,
    call_words_max=62,  # 4 + 62 * 32 = 1,988 bytes
    init_code_bytes=(300, 2_000),
    log_counts=(1, 1, 2, 2, 2, 3, 3, 4, 4),  # 2.44 per call, about 2 per transaction
    withdrawals_per_block=16,
    total_difficulty=False,
)

PROFILES = {profile.name: profile for profile in (DEFAULT, MAINNET)}
