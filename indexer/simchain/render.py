"""Block and transaction JSON for the simulated chain, rendered from string templates.

json.dumps of a dict per block is several times too slow for the 50,000 blocks/s goal,
so a block with all its transactions is filled into a template built once per chain,
with the chain's constants (chain id, gas limit, empty uncles, ...) baked in.

Hashes are blake2b of (seed, number, fork version) — plus the transaction index for
transactions — so two instances with the same seed and reorg history serve identical
bytes. Fields nobody verifies (transactions/receipts roots, miner, fees; a transaction's
from, to, value, nonce and signature) come from pools of `POOL_SIZE` pre-rendered
fragments indexed by block number (transaction ordinal), so they repeat every
`POOL_SIZE` blocks (transactions): hashing them per block would cost more than all the
rest of the block.
"""

from __future__ import annotations

import functools
from hashlib import blake2b

ZERO_HASH = "0x" + "0" * 64
EMPTY_TRIE_ROOT = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
EMPTY_UNCLES_HASH = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
GENESIS_TIMESTAMP = 1_700_000_000
SECONDS_PER_BLOCK = 12  # timestamps follow the block number, never the wall clock
GAS_LIMIT = 30_000_000
GAS_PER_TX = 21_000  # every simulated transaction is a plain transfer
PRIORITY_FEE = 1_000_000_000
MINERS = 8  # a few distinct fee recipients, like a validator set
POOL_SIZE = 4096  # a power of two, so a slot is `number & (POOL_SIZE - 1)`
_SLOT = POOL_SIZE - 1


@functools.lru_cache(maxsize=4096)
def _block_digest(seed: int, number: int, fork: int) -> tuple[str, str]:
    """(hash, stateRoot) of a block as bare hex; cached because block n+1 needs the hash
    as its parentHash."""
    if number < 0:
        return ZERO_HASH[2:], ZERO_HASH[2:]
    # The default 64-byte digest costs less than digest_size=32 (measured) and gives
    # two 32-byte values in one call.
    digest = blake2b(b"block:%d:%d:%d" % (seed, number, fork)).hexdigest()
    return digest[:64], digest[64:]


def block_hash(seed: int, number: int, fork: int) -> str:
    """The hash of block `number` in fork version `fork`; the zero hash below genesis."""
    return "0x" + _block_digest(seed, number, fork)[0]


def _random_hex(seed: int, label: bytes, slot: int) -> str:
    return blake2b(b"%s:%d:%d" % (label, seed, slot)).hexdigest()


def _block_fragment(seed: int, slot: int, has_txs: bool) -> tuple[str, str]:
    """(block fields, transaction fee fields) for pool slot `slot`, as JSON fragments."""
    roots = _random_hex(seed, b"roots", slot)
    miner = _random_hex(seed, b"miner", slot % MINERS)[:40]
    fee = 1_000_000_000 + (slot * 7_919) % 300_000_000  # wanders between 1 and 1.3 gwei
    tx_root = "0x" + roots[:64] if has_txs else EMPTY_TRIE_ROOT
    receipts_root = "0x" + roots[64:] if has_txs else EMPTY_TRIE_ROOT
    block = (
        f'"transactionsRoot":"{tx_root}","receiptsRoot":"{receipts_root}",'
        f'"miner":"0x{miner}","baseFeePerGas":"{fee:#x}"'
    )
    tx_fees = f'"gasPrice":"{fee + PRIORITY_FEE:#x}","maxFeePerGas":"{2 * fee + PRIORITY_FEE:#x}"'
    return block, tx_fees


def _tx_fragment(seed: int, slot: int) -> str:
    """The from/to/value/nonce/signature fields of a transaction, as a JSON fragment."""
    first = _random_hex(seed, b"tx-a", slot)
    second = _random_hex(seed, b"tx-b", slot)
    parity = int(second[-1], 16) & 1
    return (
        f'"from":"0x{first[:40]}","to":"0x{first[40:80]}","value":"{int(first[80:96], 16):#x}",'
        f'"nonce":"{int(first[96:100], 16):#x}","v":"{parity:#x}","yParity":"{parity:#x}",'
        f'"r":"0x{second[:64]}","s":"0x{second[64:]}"'
    )


def _interleave(template: str) -> list[str]:
    """Split a template at each "%s" into [piece, "", piece, "", ..., piece]: filling the
    empty slots with `out[1::2] = values` and joining is ~3x faster than `template % values`
    for a 3 KB block (measured)."""
    pieces = template.split("%s")
    out = [pieces[0]]
    for piece in pieces[1:]:
        out += ("", piece)
    return out


class BlockRenderer:
    """Renders one chain's blocks as JSON-RPC result text (hex quantities, like a node)."""

    def __init__(self, seed: int, chain_id: int, txs_per_block: int) -> None:
        self.seed = seed
        self.txs_per_block = txs_per_block
        self._tx_pairs = (txs_per_block + 1) // 2
        fragments = [_block_fragment(seed, slot, txs_per_block > 0) for slot in range(POOL_SIZE)]
        self._block_fragments = [block for block, _ in fragments]
        self._fee_fragments = [fees for _, fees in fragments]
        self._tx_fragments = [_tx_fragment(seed, slot) for slot in range(POOL_SIZE)]
        size = 540 + 117 * txs_per_block  # about the RLP size of a block of transfers
        head = (
            '{"number":"%s","hash":"0x%s","parentHash":"0x%s","stateRoot":"0x%s",%s,'
            '"timestamp":"%s","nonce":"0x0000000000000000",'
            f'"sha3Uncles":"{EMPTY_UNCLES_HASH}","logsBloom":"0x","difficulty":"0x0",'
            f'"totalDifficulty":"0x0","extraData":"0x","size":"{size:#x}",'
            f'"gasLimit":"{GAS_LIMIT:#x}","gasUsed":"{GAS_PER_TX * txs_per_block:#x}",'
            '"uncles":[],"transactions":['
        )
        # Every transaction's index is baked into the template, as the count is fixed.
        full_txs = ",".join(
            '{"hash":"0x%s","blockHash":"0x%s","blockNumber":"%s",'
            f'"transactionIndex":"{index:#x}","gas":"{GAS_PER_TX:#x}",%s,'
            f'"maxPriorityFeePerGas":"{PRIORITY_FEE:#x}","input":"0x","type":"0x2",'
            f'"chainId":"{chain_id:#x}","accessList":[],%s}}'
            for index in range(txs_per_block)
        )
        self._full = _interleave(head + full_txs + "]}")
        self._hashes = _interleave(head + ",".join(['"0x%s"'] * txs_per_block) + "]}")

    def render(self, number: int, fork: int, parent_fork: int, full: bool) -> str:
        """The block's JSON text. `parent_fork` is the fork version of block number-1,
        which differs from `fork` when a reorg replaced blocks from `number` on."""
        seed = self.seed
        own_hash, state_root = _block_digest(seed, number, fork)
        number_hex = hex(number)
        slot = number & _SLOT
        values = [
            number_hex,
            own_hash,
            _block_digest(seed, number - 1, parent_fork)[0],
            state_root,
            self._block_fragments[slot],
            hex(GENESIS_TIMESTAMP + number * SECONDS_PER_BLOCK),
        ]
        # Transaction hashes: one blake2b call yields the hashes of two transactions.
        hashes: list[str] = []
        for pair in range(self._tx_pairs):
            digest = blake2b(b"txs:%d:%d:%d:%d" % (seed, number, fork, pair)).hexdigest()
            hashes += (digest[:64], digest[64:])
        txs = self.txs_per_block
        if full:
            fees = self._fee_fragments[slot]
            fragments = self._tx_fragments
            ordinal = number * txs
            for index in range(txs):
                values += (
                    hashes[index],
                    own_hash,
                    number_hex,
                    fees,
                    fragments[(ordinal + index) & _SLOT],
                )
            out = self._full.copy()
        else:
            values += hashes[:txs]
            out = self._hashes.copy()
        out[1::2] = values
        return "".join(out)
