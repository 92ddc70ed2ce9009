"""Block and transaction hashes of the simulated chain, and finding a block or transaction by one.

A hash is 20 pseudo-random bytes, blake2b of (seed, number, fork version[, index]), then 12
bytes that encode the number (and index) through invertible mixes, so they look random too.
Decoding those 12 bytes says which block (and transaction) a hash can only be; the chain then
recomputes that block's hash in its current fork and compares, so it finds any transaction
by hash without storing a block, and a hash of a replaced fork finds nothing.

The 12 bytes: 8 of the block number, mixed (number_tail, shared by a block and its
transactions), then 4 of the transaction's index, mixed (index_tail, shared by transactions
at that index), or a fixed 4 bytes for a block hash, which no transaction index mixes to.
A node's hashes share nothing, but the 20 random bytes in front keep these unique and well
spread, and mixing once per block instead of once per hash is what keeps rendering cheap.
"""

from __future__ import annotations

import functools
import re
from hashlib import blake2b

ZERO_HASH = "0x" + "0" * 64
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_MASK64 = (1 << 64) - 1
_MIX64, _MIX64B = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9
_UNMIX64, _UNMIX64B = pow(_MIX64, -1, 1 << 64), pow(_MIX64B, -1, 1 << 64)
_MASK32 = (1 << 32) - 1
_OFFSET64, _OFFSET32 = 0x2545F4914F6CDD1D, 0x5BD1E995
_MIX32, _MIX32B = 0x7FEB352D, 0x846CA68B
_UNMIX32, _UNMIX32B = pow(_MIX32, -1, 1 << 32), pow(_MIX32B, -1, 1 << 32)
_BLOCK_TAIL = "ffffffff"  # index_tail of 0x9b37c735, far above any block's count
TXS_PER_DIGEST = 3  # a 64-byte blake2b digest holds the random parts of three transactions


def _is_hash(value: object) -> bool:
    """A 0x-prefixed 32-byte hex string (any case)."""
    return type(value) is str and _HASH.fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)
def block_digest(seed: int, number: int, fork: int) -> tuple[str, str, str]:
    """(hash, stateRoot, number_tail) of a block as bare hex; cached because block n+1
    needs the hash as its parentHash."""
    if number < 0:
        return ZERO_HASH[2:], ZERO_HASH[2:], ""
    # The default 64-byte digest costs less than digest_size=32 (measured) and gives the
    # hash's random part and the state root in one call.
    digest = blake2b(b"block:%d:%d:%d" % (seed, number, fork)).hexdigest()
    tail = number_tail(number)
    return f"{digest[:40]}{tail}{_BLOCK_TAIL}", digest[64:], tail


def block_hash(seed: int, number: int, fork: int) -> str:
    """The hash of block `number` in fork version `fork`; the zero hash below genesis."""
    return "0x" + block_digest(seed, number, fork)[0]


def block_number_of(hash_hex: str) -> int | None:
    """The block number a block hash can only be the hash of, or None."""
    if not _is_hash(hash_hex) or hash_hex[58:].lower() != _BLOCK_TAIL:
        return None
    return _unmix64(int(hash_hex[42:58], 16))


# number_tail mixes a number in 64 bits: xor (so 0 does not stay 0), multiply, xor-shift,
# multiply, all invertible mod 2**64.
def _unmix64(value: int) -> int:
    value = (value * _UNMIX64B) & _MASK64
    value ^= value >> 32
    return ((value * _UNMIX64) & _MASK64) ^ _OFFSET64


def _mix32(value: int) -> int:
    value = ((value ^ _OFFSET32) * _MIX32) & _MASK32
    value ^= value >> 16
    return (value * _MIX32B) & _MASK32


def _unmix32(value: int) -> int:
    value = (value * _UNMIX32B) & _MASK32
    value ^= value >> 16
    return ((value * _UNMIX32) & _MASK32) ^ _OFFSET32


_index_tails: list[str] = []


def index_tail(index: int) -> str:
    """The last 4 bytes (8 hex digits) of the hash of every transaction at `index`."""
    while len(_index_tails) <= index:
        _index_tails.append(f"{_mix32(len(_index_tails)):08x}")
    return _index_tails[index]


def number_tail(number: int) -> str:
    """Bytes 20..27 (16 hex digits) of the hash of every transaction of block `number`."""
    value = ((number ^ _OFFSET64) * _MIX64) & _MASK64  # _mix64, inlined: once per block
    return f"{(((value ^ (value >> 32)) * _MIX64B) & _MASK64):016x}"


def tx_randoms(seed: int, number: int, fork: int, count: int) -> list[str]:
    """The random first 20 bytes (40 hex digits) of a block's `count` transaction hashes;
    a hash is random + number_tail(number) + index_tail(index). The random part is a
    contract creation's address too (unique, as the hash is)."""
    if count <= TXS_PER_DIGEST:  # the default profile: one digest, three slices
        if not count:
            return []
        digest = blake2b(b"txs:%d:%d:%d:0" % (seed, number, fork)).hexdigest()
        return [digest[:40], digest[40:80], digest[80:120]][:count]
    randoms: list[str] = []
    for first in range(0, count, TXS_PER_DIGEST):
        digest = blake2b(b"txs:%d:%d:%d:%d" % (seed, number, fork, first)).hexdigest()
        randoms += (digest[:40], digest[40:80], digest[80:120])
    del randoms[count:]
    return randoms


def tx_hashes(seed: int, number: int, fork: int, count: int) -> list[str]:
    """The bare-hex hashes of a block's `count` transactions, in order."""
    tail = number_tail(number)
    randoms = tx_randoms(seed, number, fork, count)
    return [random + tail + index_tail(index) for index, random in enumerate(randoms)]


def tx_hash(seed: int, number: int, fork: int, index: int) -> str:
    """The bare-hex hash of one transaction (what tx_hashes gives at `index`)."""
    first = index - index % TXS_PER_DIGEST
    start = 40 * (index - first)
    digest = blake2b(b"txs:%d:%d:%d:%d" % (seed, number, fork, first)).hexdigest()
    return digest[start : start + 40] + number_tail(number) + index_tail(index)


def tx_location(hash_hex: str) -> tuple[int, int] | None:
    """(block number, index) a transaction hash can only be, or None."""
    if not _is_hash(hash_hex):
        return None
    return _unmix64(int(hash_hex[42:58], 16)), _unmix32(int(hash_hex[58:], 16))
