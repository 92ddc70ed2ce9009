"""Block and transaction JSON for the simulated chain, rendered from string templates.

json.dumps of a dict per block is several times too slow for the 50,000 blocks/s goal,
so a block with all its transactions is one %-format of a template built once per chain,
with the chain's constants (chain id, gas limit, empty uncles, ...) baked in.

Hashes are blake2b of (seed, number, fork version) — and the transaction index for
transactions — so two instances with the same seed and reorg history serve identical
bytes. Fields nobody verifies (from, to, value, signature) come from a pool of
`TX_DETAIL_POOL` pre-rendered fragments, so they repeat every ~pool/txs_per_block blocks;
hashing them per transaction would cost more than the rest of the block.
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
TX_DETAIL_POOL = 4096  # a power of two, so a slot is `& (pool - 1)`


@functools.lru_cache(maxsize=1 << 16)
def _block_digest(seed: int, number: int, fork: int) -> tuple[str, str]:
    """(hash, stateRoot) of a block; cached because block n+1 needs it as parentHash."""
    # The default 64-byte digest costs less than digest_size=32 (measured) and gives
    # two 32-byte values in one call.
    digest = blake2b(b"block:%d:%d:%d" % (seed, number, fork)).hexdigest()
    return "0x" + digest[:64], "0x" + digest[64:]


def block_hash(seed: int, number: int, fork: int) -> str:
    """The hash of block `number` in fork version `fork`; the zero hash below genesis."""
    if number < 0:
        return ZERO_HASH
    return _block_digest(seed, number, fork)[0]


def tx_hash(seed: int, number: int, index: int, fork: int) -> str:
    """The hash of transaction `index` of block `number` in fork version `fork`."""
    return "0x" + blake2b(b"tx:%d:%d:%d:%d" % (seed, number, index, fork)).hexdigest()[:64]


def base_fee(number: int) -> int:
    """A deterministic base fee that wanders between 1 and 1.3 gwei."""
    return 1_000_000_000 + (number * 7_919) % 300_000_000


def _tx_detail(seed: int, slot: int) -> str:
    """The from/to/value/signature part of a transaction, without the braces."""
    first = blake2b(b"txdetail:%d:%d:a" % (seed, slot)).hexdigest()
    second = blake2b(b"txdetail:%d:%d:b" % (seed, slot)).hexdigest()
    parity = int(second[-1], 16) & 1
    return (
        f',"from":"0x{first[:40]}","to":"0x{first[40:80]}","value":"{int(first[80:96], 16):#x}"'
        f',"v":"{parity:#x}","yParity":"{parity:#x}","r":"0x{second[:64]}","s":"0x{second[64:]}"'
    )


class BlockRenderer:
    """Renders one chain's blocks as JSON-RPC result text (hex quantities, like a node)."""

    def __init__(self, seed: int, chain_id: int, txs_per_block: int) -> None:
        self.seed = seed
        self.txs_per_block = txs_per_block
        self._miners = [
            "0x" + blake2b(b"miner:%d:%d" % (seed, i)).hexdigest()[:40] for i in range(MINERS)
        ]
        self._details = [_tx_detail(seed, slot) for slot in range(TX_DETAIL_POOL)]
        size = 540 + 117 * txs_per_block  # about the RLP size of a block of transfers
        head = (
            '{"number":"%s","hash":"%s","parentHash":"%s","nonce":"0x0000000000000000",'
            f'"sha3Uncles":"{EMPTY_UNCLES_HASH}","logsBloom":"0x",'
            '"transactionsRoot":"%s","stateRoot":"%s","receiptsRoot":"%s","miner":"%s",'
            f'"difficulty":"0x0","totalDifficulty":"0x0","extraData":"0x","size":"{size:#x}",'
            f'"gasLimit":"{GAS_LIMIT:#x}","gasUsed":"{GAS_PER_TX * txs_per_block:#x}",'
            '"timestamp":"%s","baseFeePerGas":"%s","uncles":[],"transactions":['
        )
        # Per transaction only (hash, block-wide fields, detail fragment) vary; the
        # block-wide fields are formatted once per block into `_tx_shared`.
        full_txs = ",".join(
            f'{{"hash":"0x%s","transactionIndex":"{i:#x}"%s%s}}' for i in range(txs_per_block)
        )
        hash_txs = ",".join('"0x%s"' for _ in range(txs_per_block))
        self._full_template = head + full_txs + "]}"
        self._hashes_template = head + hash_txs + "]}"
        self._tx_shared = (
            ',"blockHash":"%s","blockNumber":"%s",'
            f'"gas":"{GAS_PER_TX:#x}","gasPrice":"%s","maxFeePerGas":"%s",'
            f'"maxPriorityFeePerGas":"{PRIORITY_FEE:#x}","nonce":"%s","input":"0x",'
            f'"type":"0x2","chainId":"{chain_id:#x}","accessList":[]'
        )

    def render(self, number: int, fork: int, parent_hash: str, full: bool) -> str:
        """The block's JSON text. `parent_hash` is passed in because it depends on the
        fork version of block number-1, which only the chain knows."""
        seed = self.seed
        own_hash, state_root = _block_digest(seed, number, fork)
        number_hex = hex(number)
        fee = base_fee(number)
        if self.txs_per_block:
            roots = blake2b(b"roots:%d:%d:%d" % (seed, number, fork)).hexdigest()
            tx_root, receipts_root = "0x" + roots[:64], "0x" + roots[64:]
        else:
            tx_root = receipts_root = EMPTY_TRIE_ROOT
        args = [
            number_hex,
            own_hash,
            parent_hash,
            tx_root,
            state_root,
            receipts_root,
            self._miners[number % MINERS],
            hex(GENESIS_TIMESTAMP + number * SECONDS_PER_BLOCK),
            hex(fee),
        ]
        if full:
            shared = self._tx_shared % (
                own_hash,
                number_hex,
                hex(fee + PRIORITY_FEE),
                hex(2 * fee + PRIORITY_FEE),
                number_hex,
            )
            details = self._details
            slot = number * self.txs_per_block
            for index in range(self.txs_per_block):
                digest = blake2b(b"tx:%d:%d:%d:%d" % (seed, number, index, fork)).hexdigest()
                args += (digest[:64], shared, details[(slot + index) & (TX_DETAIL_POOL - 1)])
            return self._full_template % tuple(args)
        for index in range(self.txs_per_block):
            digest = blake2b(b"tx:%d:%d:%d:%d" % (seed, number, index, fork)).hexdigest()
            args.append(digest[:64])
        return self._hashes_template % tuple(args)
