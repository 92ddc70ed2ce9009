"""A simulated block's content, drawn once per pool slot and kept as templates.

Everything but hashes, the number, the timestamp and withdrawal indices comes from the slot:
transactions (type, fees, calldata, access list, signature), receipts (status, gas, logs)
and the header fields nobody can verify (roots, mixHash, miner, ...). The slot's
`random.Random` is seeded from (seed, profile, transactions per block, slot), so every
instance with the same options serves the same bytes.

Values are consistent, not cryptographically real: the gas of the receipts adds up to the
block's gasUsed, the blob gas of its blob transactions to blobGasUsed, a reverted call has
no logs, a creation has `to` null and a contractAddress; blooms are set from the logs'
addresses and topics, but with blake2b where a node uses keccak-256 (hashlib has none).

Holes of the block templates index this vector, built per request by render.py:
    [number, hash, parentHash, stateRoot, timestamp, number_tail, withdrawal index * W,
     random part of each transaction hash * N]
and of the receipts templates:
    [ids of transaction 0, ..., ids of transaction N-1, number_tail,
     contractAddress of each creation]
where a transaction's ids are `"blockHash":..,"blockNumber":..,"transactionHash":"0x` and the
random part of its hash; a hash ends with number_tail and index_tail (hashes.py), the latter
written into the templates.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from hashlib import blake2b

from indexer.simchain.hashes import index_tail
from indexer.simchain.profiles import Profile
from indexer.simchain.templates import Template, TemplateBuilder

EMPTY_TRIE_ROOT = "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
EMPTY_UNCLES_HASH = "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
EMPTY_REQUESTS_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
GAS_LIMIT = 30_000_000
TRANSFER_GAS = 21_000
MINERS = 8  # a few distinct fee recipients, like a validator set
CONTRACTS = 64  # log addresses and call targets repeat, as popular tokens and pools do
GAS_PER_BLOB = 131_072
BLOB_BASE_FEE_UPDATE_FRACTION = 5_007_716  # Prague
PRIORITY_FEES = (1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 2_000_000_000)
EXTRA_DATA = (
    "",
    "6265617665726275696c642e6f7267",
    "546974616e2028746974616e6275696c6465722e78797a29",
)
SELECTORS = ("a9059cbb", "095ea7b3", "23b872dd", "38ed1739", "3593564c", "5ae401dc", "d0e30db0")
EVENTS = (  # topic0 of Transfer, Approval, Swap (v2), Sync, Deposit, Swap (v3), Withdrawal
    "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925",
    "d78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822",
    "1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1",
    "e1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c",
    "c42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67",
    "7fcf532c15f0a6db0bd6d0e038bea71d30d808c7d98cb3bf7268a95bf5081b65",
)
TOPIC_COUNTS = (1, 2, 3, 3, 3, 3, 4)  # most events index two addresses besides topic0
DATA_BYTES = (0, 32, 32, 32, 64, 64, 96, 128, 160, 256)
HOLE_NUMBER, HOLE_HASH, HOLE_PARENT, HOLE_STATE_ROOT, HOLE_TIMESTAMP, HOLE_TX_TAIL = range(6)
HOLE_WITHDRAWALS = 6  # then the random parts of the transaction hashes
# Holes of one receipt's template.
RECEIPT_IDS, RECEIPT_CONTRACT, RECEIPT_TX_TAIL = range(3)


@dataclass(slots=True)
class SlotContent:
    full: Template  # eth_getBlockByNumber(n, true)
    hashes: Template  # eth_getBlockByNumber(n, false)
    receipts: Template  # eth_getBlockReceipts
    receipt: list[Template]  # eth_getTransactionReceipt, holes [ids, contract, number_tail]
    creations: list[int]  # indices of the contract creations, in order


@functools.lru_cache(maxsize=65_536)
def _bloom_bits(item: str) -> int:
    digest = blake2b(bytes.fromhex(item), digest_size=6).digest()
    bits = 0
    for i in (0, 2, 4):
        bits |= 1 << (((digest[i] << 8) | digest[i + 1]) & 2047)
    return bits


def _bloom(logs: list[tuple[str, list[str], str]]) -> int:
    bits = 0
    for address, topics, _ in logs:
        bits |= _bloom_bits(address)
        for topic in topics:
            bits |= _bloom_bits(topic)
    return bits


def _blob_base_fee(excess_blob_gas: int) -> int:
    """EIP-4844's fake_exponential(1, excess, fraction)."""
    i, output, accumulator = 1, 0, BLOB_BASE_FEE_UPDATE_FRACTION
    while accumulator > 0:
        output += accumulator
        accumulator = accumulator * excess_blob_gas // (BLOB_BASE_FEE_UPDATE_FRACTION * i)
        i += 1
    return output // BLOB_BASE_FEE_UPDATE_FRACTION


class _Draw:
    """The random choices of one slot."""

    def __init__(self, seed: int, profile: Profile, txs: int, slot: int) -> None:
        self.rng = random.Random(f"simchain:{seed}:{profile.name}:{txs}:{slot}")
        chain = random.Random(f"simchain:{seed}:chain")
        self.contracts = [chain.randbytes(20).hex() for _ in range(CONTRACTS)]
        self.miners = [chain.randbytes(20).hex() for _ in range(MINERS)]

    def hex(self, size: int) -> str:
        return self.rng.randbytes(size).hex()

    def word(self) -> str:
        """A 32-byte ABI word: mostly a padded address or amount, as calldata and logs are."""
        kind = self.rng.random()
        if kind < 0.45:
            return "0" * 24 + self.hex(20)
        if kind < 0.9:
            return "0" * 40 + self.hex(12)
        return self.hex(32)

    def calldata(self, profile: Profile) -> str:
        words = min(profile.call_words_max, int(self.rng.expovariate(1 / profile.call_words_mean)))
        return self.rng.choice(SELECTORS) + "".join(self.word() for _ in range(words))

    def log(self) -> tuple[str, list[str], str]:
        rng = self.rng
        topics = [rng.choice(EVENTS)] + [self.word() for _ in range(rng.choice(TOPIC_COUNTS) - 1)]
        data = "".join(self.word() for _ in range(rng.choice(DATA_BYTES) // 32))
        return rng.choice(self.contracts), topics, data


@dataclass(slots=True)
class _Tx:
    type: int
    creation: bool
    status: int
    gas_used: int
    effective_gas_price: int
    blobs: int
    from_address: str
    to_address: str | None
    before_hash: str  # the transaction's fields after blockHash/blockNumber, before its hash
    after_hash: str
    logs: list[tuple[str, list[str], str]]


def _draw_tx(
    draw: _Draw, profile: Profile, index: int, base_fee: int, max_gas: int, chain_id: int
) -> _Tx:
    rng = draw.rng
    kind = rng.random()
    plain = kind < profile.plain_transfer_ratio
    creation = not plain and kind < profile.plain_transfer_ratio + profile.creation_ratio
    tx_type = rng.choices(range(4), profile.type_weights)[0]
    if creation and tx_type == 3:
        tx_type = 2  # a blob transaction cannot create a contract
    from_address = draw.hex(20)
    to_address: str | None
    logs: list[tuple[str, list[str], str]] = []
    status = 1
    if plain:
        to_address, data, value = draw.hex(20), "", rng.randrange(10**15, 10**19)
        gas_used = TRANSFER_GAS
    elif creation:
        to_address, data, value = None, draw.hex(rng.randint(*profile.init_code_bytes)), 0
        gas_used = 53_000 + 16 * len(data) // 2 + rng.randrange(50_000, 400_000)
        logs = [draw.log() for _ in range(rng.choice((0, 0, 1, 2)))]
    else:
        to_address, data = rng.choice(draw.contracts), draw.calldata(profile)
        value = rng.randrange(10**18) if rng.random() < 0.1 else 0
        gas_used = TRANSFER_GAS + 16 * len(data) // 2 + rng.randrange(5_000, 120_000)
        if rng.random() < profile.revert_ratio:
            status = 0
        else:
            logs = [draw.log() for _ in range(rng.choice(profile.log_counts))]
    gas_used = min(gas_used, max_gas)
    gas = gas_used if plain else min(max_gas, int(gas_used * rng.uniform(1.05, 1.6)))
    priority = rng.choice(PRIORITY_FEES)
    price = base_fee + priority
    blobs = rng.randint(1, 3) if tx_type == 3 else 0

    fees = f'"gasPrice":"{price:#x}"'
    if tx_type >= 2:
        fees += (
            f',"maxFeePerGas":"{2 * base_fee + priority:#x}","maxPriorityFeePerGas":"{priority:#x}"'
        )
    if tx_type == 3:
        fees += f',"maxFeePerBlobGas":"{rng.choice((10**9, 10**10, 3 * 10**10)):#x}"'
    before = f',"from":"0x{from_address}","gas":"{gas:#x}",{fees},"hash":"0x'
    to_text = "null" if to_address is None else f'"0x{to_address}"'
    after = [
        f'","input":"0x{data}","nonce":"{rng.randrange(100_000):#x}","to":{to_text},'
        f'"transactionIndex":"{index:#x}","value":"{value:#x}","type":"{tx_type:#x}",'
    ]
    if tx_type >= 1:
        entries = (
            rng.randint(1, 3) if tx_type == 1 else (rng.randint(1, 2) if rng.random() < 0.1 else 0)
        )
        access = ",".join(
            f'{{"address":"0x{rng.choice(draw.contracts)}","storageKeys":['
            + ",".join(f'"0x{draw.hex(32)}"' for _ in range(rng.randint(0, 3)))
            + "]}"
            for _ in range(entries)
        )
        after.append(f'"accessList":[{access}],')
    after.append(f'"chainId":"{chain_id:#x}",')
    if tx_type == 3:
        hashes = ",".join(f'"0x01{draw.hex(31)}"' for _ in range(blobs))
        after.append(f'"blobVersionedHashes":[{hashes}],')
    parity = rng.getrandbits(1)
    v = chain_id * 2 + 35 + parity if tx_type == 0 else parity  # EIP-155 for legacy
    after.append(f'"v":"{v:#x}","r":"{rng.getrandbits(256):#x}","s":"{rng.getrandbits(255):#x}"')
    if tx_type >= 1:
        after.append(f',"yParity":"{parity:#x}"')
    after.append("}")
    return _Tx(
        type=tx_type,
        creation=creation,
        status=status,
        gas_used=gas_used,
        effective_gas_price=price,
        blobs=blobs,
        from_address=from_address,
        to_address=to_address,
        before_hash=before,
        after_hash="".join(after),
        logs=logs,
    )


def _receipt(
    tx: _Tx, index: int, cumulative: int, first_log: int, blob_price: int
) -> TemplateBuilder:
    """One receipt, with holes RECEIPT_*."""
    to_text = "null" if tx.to_address is None else f'"0x{tx.to_address}"'
    hash_end = f'{index_tail(index)}"'
    receipt = TemplateBuilder().text("{").hole(RECEIPT_IDS).hole(RECEIPT_TX_TAIL).text(hash_end)
    receipt.text(f',"transactionIndex":"{index:#x}","from":"0x{tx.from_address}","to":{to_text}')
    if tx.creation:
        receipt.text(',"contractAddress":"0x').hole(RECEIPT_CONTRACT).text('"')
    else:
        receipt.text(',"contractAddress":null')
    receipt.text(
        f',"cumulativeGasUsed":"{cumulative:#x}","gasUsed":"{tx.gas_used:#x}",'
        f'"effectiveGasPrice":"{tx.effective_gas_price:#x}","status":"{tx.status:#x}",'
        f'"type":"{tx.type:#x}",'
    )
    if tx.type == 3:
        receipt.text(
            f'"blobGasUsed":"{tx.blobs * GAS_PER_BLOB:#x}","blobGasPrice":"{blob_price:#x}",'
        )
    receipt.text(f'"logsBloom":"0x{_bloom(tx.logs):0512x}","logs":[')
    for offset, (address, topics, data) in enumerate(tx.logs):
        if offset:
            receipt.text(",")
        topic_text = ",".join(f'"0x{topic}"' for topic in topics)
        receipt.text("{").hole(RECEIPT_IDS).hole(RECEIPT_TX_TAIL).text(hash_end)
        receipt.text(
            f',"transactionIndex":"{index:#x}","logIndex":"{first_log + offset:#x}",'
            f'"removed":false,"address":"0x{address}","topics":[{topic_text}],"data":"0x{data}"}}'
        )
    receipt.text("]}")
    return receipt


def draw_slot(seed: int, chain_id: int, profile: Profile, txs: int, slot: int) -> SlotContent:
    """The content of every block in pool slot `slot`, as templates."""
    draw = _Draw(seed, profile, txs, slot)
    rng = draw.rng
    base_fee = 1_000_000_000 + (slot * 7_919) % 300_000_000  # wanders between 1 and 1.3 gwei
    excess_blob_gas = rng.choice((0, GAS_PER_BLOB * rng.randrange(1, 400)))
    blob_price = _blob_base_fee(excess_blob_gas)
    max_gas = GAS_LIMIT // max(txs, 1)
    drawn = [_draw_tx(draw, profile, index, base_fee, max_gas, chain_id) for index in range(txs)]
    withdrawals = [
        (draw.hex(20), rng.randrange(1_500_000), rng.randrange(10_000_000, 60_000_000))
        for _ in range(profile.withdrawals_per_block)
    ]

    # Receipts: the block's template and one per transaction, sharing their text.
    creations = [index for index, tx in enumerate(drawn) if tx.creation]
    receipts = TemplateBuilder().text("[")
    singles: list[Template] = []
    cumulative = first_log = 0
    for index, tx in enumerate(drawn):
        cumulative += tx.gas_used
        receipt = _receipt(tx, index, cumulative, first_log, blob_price)
        first_log += len(tx.logs)
        singles.append(receipt.build())
        if index:
            receipts.text(",")
        address_hole = txs + 1 + creations.index(index) if tx.creation else -1
        receipts.append(receipt, (index, address_hole, txs))
    receipts.text("]")

    bloom = 0
    for tx in drawn:
        bloom |= _bloom(tx.logs)
    size = (
        620 + 40 * len(withdrawals) + sum(110 + len(tx.after_hash) // 2 for tx in drawn)
    )  # about the RLP size; nobody can check it
    blob_gas = sum(tx.blobs for tx in drawn) * GAS_PER_BLOB
    roots = (draw.hex(32), draw.hex(32)) if txs else (EMPTY_TRIE_ROOT, EMPTY_TRIE_ROOT)
    extra = rng.choice(EXTRA_DATA)
    mix_hash, beacon_root, withdrawals_root = draw.hex(32), draw.hex(32), draw.hex(32)
    total_difficulty = '"totalDifficulty":"0x0",' if profile.total_difficulty else ""

    def block(full: bool) -> Template:
        out = TemplateBuilder().text(
            f'{{"baseFeePerGas":"{base_fee:#x}","blobGasUsed":"{blob_gas:#x}","difficulty":"0x0",'
            f'"excessBlobGas":"{excess_blob_gas:#x}","extraData":"0x{extra}",'
            f'"gasLimit":"{GAS_LIMIT:#x}","gasUsed":"{cumulative:#x}","hash":"0x'
        )
        out.hole(HOLE_HASH).text(
            f'","logsBloom":"0x{bloom:0512x}","miner":"0x{draw.miners[slot % MINERS]}",'
            f'"mixHash":"0x{mix_hash}","nonce":"0x0000000000000000","number":"'
        )
        out.hole(HOLE_NUMBER).text(f'","parentBeaconBlockRoot":"0x{beacon_root}","parentHash":"0x')
        out.hole(HOLE_PARENT).text(
            f'","receiptsRoot":"0x{roots[1]}","requestsHash":"0x{EMPTY_REQUESTS_HASH}",'
            f'"sha3Uncles":"0x{EMPTY_UNCLES_HASH}","size":"{size:#x}","stateRoot":"0x'
        )
        out.hole(HOLE_STATE_ROOT).text('","timestamp":"').hole(HOLE_TIMESTAMP)
        out.text(f'",{total_difficulty}"transactions":[')
        first_hash = HOLE_WITHDRAWALS + len(withdrawals)
        for index, tx in enumerate(drawn):
            if index:
                out.text(",")
            if full:
                out.text('{"blockHash":"0x').hole(HOLE_HASH).text('","blockNumber":"')
                out.hole(HOLE_NUMBER).text('"', tx.before_hash).hole(first_hash + index)
                out.hole(HOLE_TX_TAIL).text(index_tail(index), tx.after_hash)
            else:
                out.text('"0x').hole(first_hash + index).hole(HOLE_TX_TAIL)
                out.text(index_tail(index), '"')
        out.text(f'],"transactionsRoot":"0x{roots[0]}","uncles":[],"withdrawals":[')
        for index, (address, validator, amount) in enumerate(withdrawals):
            out.text("," if index else "", '{"index":"').hole(HOLE_WITHDRAWALS + index)
            out.text(
                f'","validatorIndex":"{validator:#x}","address":"0x{address}","amount":"{amount:#x}"}}'
            )
        out.text(f'],"withdrawalsRoot":"0x{withdrawals_root}"}}')
        return out.build()

    return SlotContent(
        full=block(full=True),
        hashes=block(full=False),
        receipts=receipts.build(),
        receipt=singles,
        creations=creations,
    )
