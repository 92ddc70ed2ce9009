"""Block numbers in, checked blocks and receipts out: the fetch path's top, over any Sender.

A `Fetcher` asks one Sender (a provider's Transport, or a Router of several) for batches of
blocks, checks that they chain through parentHash, attaches every transaction's receipt by the
method the chain's providers serve (eth_getBlockReceipts until they answer that they lack it,
then eth_getTransactionReceipt for good), and reads headers for the head and reorg checks. What
it fetched comes back with the answer bytes it took (FetchedBlocks), for the worker's budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from exporter.metrics import Metrics
from indexer.chain.decoders import (
    block_receipts_decoder,
    decode_blocks,
    decode_header_hashes,
    decode_header_links,
    decode_quantities,
    decode_tagged_numbers,
    transaction_receipts_decoder,
)
from indexer.chain.envelope import results_in_order
from indexer.chain.errors import MethodNotFound, RpcError
from indexer.chain.model import BadChainData, Block, Receipt, check_links
from indexer.chain.receipts import attach_receipts
from indexer.chain.sender import Answer, RpcSettings, Sender, backoff_seconds
from indexer.chain.transport import (
    BLOCK_RECEIPTS,
    RECEIPTS_METHODS,
    TRANSACTION_RECEIPT,
    Transport,
)
from indexer.config import DEFAULT_PROVIDER

log = logging.getLogger(__name__)
T = TypeVar("T")

# Receipts batches are cut by the bytes their answers may take, not only by rpc_batch_size:
# a receipt is ~1 KB before its logs (its logsBloom alone is 514 characters) and a log ~0.6 KB,
# so a mainnet block's receipts (150 transactions, ~2 logs each) take ~300 KB, and 100 of them
# would be most of the default 64 MiB cap. An answer over the cap is read up to it, thrown
# away and asked again in halves; planning for 4 KiB per receipt within a quarter of the cap
# keeps that for outliers.
RECEIPT_BYTES_ESTIMATE = 4096
RECEIPTS_CAP_SHARE = 4
# A batch of blocks goes out as at least this many requests (each of its blocks, then their
# receipts), of at least MIN_CALLS_PER_REQUEST calls and at most rpc_batch_size.
# A node serves a request's calls one after the other: anvil served 2,000 blocks with receipts
# 15 % faster as 10-call requests 16 at a time than as 100-call ones 2 at a time, with less of
# its own CPU (bench/results/anvil-shapes.json), and a batch's first blocks are in sooner. A
# large batch of small blocks (a 3-transaction backlog: ~900) keeps full-size requests, whose
# fewer round trips cost the worker and node less.
MIN_REQUESTS_PER_BATCH = 8
MIN_CALLS_PER_REQUEST = 10


@dataclass
class FetchedBlocks:
    """Checked blocks (with receipts when asked) and the answer bytes they were read from."""

    blocks: list[Block]
    answer_bytes: int


async def _all(requests: Iterable[Awaitable[T]]) -> list[T]:
    """Await them all, then raise the first failure (a MethodNotFound first: it decides what
    happens next). Unlike a bare gather, no batch is left running after its sibling failed."""
    results = await asyncio.gather(*requests, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        raise next((f for f in failures if isinstance(f, MethodNotFound)), failures[0])
    return results  # type: ignore[return-value]


class Fetcher:
    """One chain's fetches through `sender`. Share an instance: it learns the receipts method."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.chain = sender.chain
        self.metrics: Metrics = sender.metrics
        # eth_getBlockReceipts until the providers answer that they lack it, then for good
        # eth_getTransactionReceipt: detected once per fetcher, shown in a metric.
        self.receipts_method = BLOCK_RECEIPTS
        self._receipts_method_known = False
        self._receipts_probe = asyncio.Lock()  # one batch finds out; the others wait for it

    @classmethod
    def for_url(
        cls,
        url: str,
        chain: str,
        settings: RpcSettings | None = None,
        metrics: Metrics | None = None,
        provider: str = DEFAULT_PROVIDER,
    ) -> Fetcher:
        """A fetcher straight to one provider, without routing (tests, benchmark ceilings)."""
        return cls(Transport(url, chain, settings, metrics, provider))

    @property
    def settings(self) -> RpcSettings:
        return self.sender.settings

    async def close(self) -> None:
        await self.sender.close()

    async def call(self, method: str, *params: Any) -> Any:
        return (await self.sender.send([(method, list(params))], results_in_order)).results[0]

    async def chain_id(self) -> int:
        return int((await self.sender.send([("eth_chainId", [])], decode_quantities)).results[0])

    async def pinned_chain_id(self) -> int:
        """The chain id every provider's answers must come from (Router.pinned_chain_id)."""
        return await self.sender.pinned_chain_id()

    async def latest_available_head(self) -> tuple[int, bytes | None]:
        """The latest available block (head-1 rule) and its hash, None under the head-1 rule."""
        return await self.sender.latest_available_head()

    async def latest_available_block(self) -> int:
        """The head-1 rule: if block N (eth_blockNumber) cannot be fetched yet, the head is N-1."""
        return (await self.latest_available_head())[0]

    async def _fetch_batch(self, numbers: list[int], full: bool) -> Answer:
        """One batch of checked blocks (full) or header hashes; null answers are retried."""
        calls = [("eth_getBlockByNumber", [hex(n), full]) for n in numbers]
        decode = decode_blocks if full else decode_header_hashes
        last_error: Exception | None = None
        for attempt in range(self.settings.max_retries + 1):
            answer = await self.sender.send(calls, decode)
            results = answer.results
            missing = [n for n, result in zip(numbers, results, strict=True) if result is None]
            if not missing:
                return answer
            last_error = BadChainData(f"block {missing[0]}: the provider returned null")
            await asyncio.sleep(backoff_seconds(self.settings, attempt))
        raise BadChainData(
            f"{self.chain}: {last_error} (after {self.settings.max_retries + 1} tries)"
        )

    async def get_blocks(self, start: int, end: int, *, receipts: bool = False) -> list[Block]:
        """Blocks start..end with full transactions, checked to chain through parentHash.

        Block start-1 is fetched too, so the first block's parentHash is checked against the
        provider like every other: stored unchecked, a bad one would make the range before it
        fail its neighbour check (ParentMismatch) forever. With `receipts`, every transaction
        of blocks start..end gets its receipt, checked against its block; each batch of blocks
        asks for its receipts as soon as it has arrived.
        """
        return (await self.get_blocks_batch(start, end, receipts=receipts)).blocks

    async def get_blocks_batch(
        self,
        start: int,
        end: int,
        *,
        receipts: bool = False,
        previous: Block | None = None,
        linked: bool = False,
    ) -> FetchedBlocks:
        """Blocks start..end as get_blocks fetches them, with the answer bytes they took.

        One batch of a range streamed in parts need not fetch block start-1 again: with
        `previous` (block start-1 as the batch before fetched it), the first block's parentHash
        is checked against it; `linked` leaves that check to the caller, who makes it once the
        batch before is in (batches fetched at once). Either way the parent links of a range
        hold across its batches without asking for any block twice.
        """
        if previous is not None and previous.number != start - 1:
            raise ValueError(f"previous is block {previous.number}, not {start - 1}")
        linked = linked or previous is not None
        first = start if linked else max(start - 1, 0)
        numbers = list(range(first, end + 1))
        spread = max(MIN_CALLS_PER_REQUEST, -(-len(numbers) // MIN_REQUESTS_PER_BATCH))
        size = min(self.settings.batch_size, spread)

        async def fetch(batch: list[int]) -> FetchedBlocks:
            answer = await self._fetch_batch(batch, True)
            blocks: list[Block] = answer.results
            read = answer.size
            if receipts:
                read += await self._fetch_receipts([b for b in blocks if b.number >= start])
            return FetchedBlocks(blocks, read)

        fetched = await asyncio.gather(
            *(fetch(numbers[i : i + size]) for i in range(0, len(numbers), size))
        )
        blocks = [block for part in fetched for block in part.blocks]
        read = sum(part.answer_bytes for part in fetched)
        check_links([previous, *blocks] if previous is not None else blocks)
        if not linked and start > 0:
            blocks = blocks[1:]
        return FetchedBlocks(blocks, read)

    async def _fetch_receipts(self, blocks: list[Block]) -> int:
        """Attach every transaction's receipt, by the method the providers serve; the answer
        bytes read.

        Until that is known, one batch at a time asks: batches fetched side by side would
        otherwise each find out on their own that eth_getBlockReceipts is missing.
        """
        blocks = [block for block in blocks if block.transactions]  # nothing to ask for
        if not blocks:
            return 0
        if not self._receipts_method_known:
            async with self._receipts_probe:
                if not self._receipts_method_known:
                    return await self._receipts_by_any_method(blocks)
        return await self._receipts_by_any_method(blocks)

    async def _receipts_by_any_method(self, blocks: list[Block]) -> int:
        if self.receipts_method == BLOCK_RECEIPTS:
            try:
                read = await self._block_receipts(blocks)
            except MethodNotFound as exc:
                self._fall_back(exc)
            else:
                self._show_receipts_method()
                return read
        read = await self._transaction_receipts(blocks)
        self._show_receipts_method()
        return read

    def _receipt_batches(self, blocks: list[Block]) -> list[list[Block]]:
        """Blocks in batches of at most batch_size calls and a share of the response cap."""
        budget = self.settings.max_response_bytes // RECEIPTS_CAP_SHARE
        batches: list[list[Block]] = []
        answer = 0
        for block in blocks:
            cost = RECEIPT_BYTES_ESTIMATE * len(block.transactions)
            if batches and len(batches[-1]) < self.settings.batch_size and answer + cost <= budget:
                batches[-1].append(block)
                answer += cost
            else:
                batches.append([block])
                answer = cost
        return batches

    async def _block_receipts(self, blocks: list[Block]) -> int:
        async def fetch(batch: list[Block]) -> int:
            calls = [(BLOCK_RECEIPTS, [hex(block.number)]) for block in batch]
            answer = await self.sender.send(calls, block_receipts_decoder(batch))
            for block, receipts in zip(batch, answer.results, strict=True):
                attach_receipts(block, receipts)
            return answer.size

        return sum(await _all(fetch(batch) for batch in self._receipt_batches(blocks)))

    async def _transaction_receipts(self, blocks: list[Block]) -> int:
        """One eth_getTransactionReceipt per transaction, batched up to batch_size calls."""
        blocks = [block for block in blocks if block.transactions[0].receipt is None]
        calls = [(TRANSACTION_RECEIPT, ["0x" + tx.hash]) for b in blocks for tx in b.transactions]
        size = self.settings.batch_size
        decode = transaction_receipts_decoder(blocks)
        answers = await _all(
            self.sender.send(calls[i : i + size], decode) for i in range(0, len(calls), size)
        )
        receipts: list[Receipt] = [receipt for answer in answers for receipt in answer.results]
        first = 0
        for block in blocks:
            count = len(block.transactions)
            attach_receipts(block, receipts[first : first + count])  # log order across the block
            first += count
        return sum(answer.size for answer in answers)

    def _fall_back(self, error: MethodNotFound) -> None:
        if self.receipts_method == TRANSACTION_RECEIPT:
            return  # another batch already found out
        self.receipts_method = TRANSACTION_RECEIPT
        self._receipts_method_known = False
        log.warning(
            "%s provider lacks %s (%s): fetching receipts with %s from now on",
            self.chain,
            BLOCK_RECEIPTS,
            error,
            TRANSACTION_RECEIPT,
            extra={"source": "rpc", "chain": self.chain, "method": TRANSACTION_RECEIPT},
        )
        self._show_receipts_method()

    def _show_receipts_method(self) -> None:
        if self._receipts_method_known:
            return
        for method in RECEIPTS_METHODS:
            in_use = 1 if method == self.receipts_method else 0
            self.metrics.rpc_receipts_method.labels(self.chain, method).set(in_use)
        self._receipts_method_known = True

    async def get_block_hashes(self, start: int, end: int) -> dict[int, bytes]:
        """Hashes of blocks start..end (headers only), for comparing against what is stored."""
        numbers = list(range(start, end + 1))
        size = self.settings.batch_size
        hashes: dict[int, bytes] = {}
        for i in range(0, len(numbers), size):
            batch = numbers[i : i + size]
            answer = await self._fetch_batch(batch, False)
            for number, digest in zip(batch, answer.results, strict=True):
                hashes[number] = bytes.fromhex(digest)
        return hashes

    async def tagged_block(self, tag: str) -> int | None:
        """The number of the node's `tag` block ("finalized", "safe"), or None when it has
        none: a null answer, or the tag refused with a permanent JSON-RPC error."""
        call = ("eth_getBlockByNumber", [tag, False])
        try:
            answer = await self.sender.send([call], decode_tagged_numbers)
        except RpcError as exc:
            if exc.retryable:
                raise
            return None
        number: int | None = answer.results[0]
        return number

    async def get_header_links(self, start: int, end: int) -> dict[int, tuple[bytes, bytes]]:
        """(hash, parentHash) of blocks start..end, headers only: whether new blocks extend the
        ones checked before."""
        numbers = list(range(start, end + 1))
        size = self.settings.batch_size
        links: dict[int, tuple[bytes, bytes]] = {}
        for i in range(0, len(numbers), size):
            batch = numbers[i : i + size]
            calls = [("eth_getBlockByNumber", [hex(n), False]) for n in batch]
            answer = await self.sender.send(calls, decode_header_links)
            for number, link in zip(batch, answer.results, strict=True):
                if link is None:
                    raise BadChainData(f"block {number}: the provider returned null")
                links[number] = link
        return links

    async def header_links_by_provider(self, number: int) -> dict[str, tuple[bytes, bytes] | None]:
        """Block `number`'s (hash, parentHash) from every provider in rotation, by name (None:
        it has no such block or failed): the witnesses of a fork."""
        calls = [("eth_getBlockByNumber", [hex(number), False])]
        answers = await self.sender.ask_each(calls, decode_header_links)
        return {
            name: None if answer is None else answer.results[0] for name, answer in answers.items()
        }

    async def served_anywhere(self, number: int) -> bool:
        """Whether any provider in rotation has block `number`."""
        links = await self.header_links_by_provider(number)
        return any(link is not None for link in links.values())
