"""The index_range activity (IndexRange): a block range fetched and stored batch by batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from exporter.tracing import current_trace_id, tracer
from indexer.activities.chain_cache import ChainCache, chain_failure
from indexer.activities.dataset_rows import missing_by_dataset, new_rows, stored_rows
from indexer.activities.heartbeat import heartbeating
from indexer.activities.stream import Batch, stream_range
from indexer.chain.errors import RpcError, RpcUnavailable
from indexer.chain.fetcher import FetchedBlocks
from indexer.chain.model import BadChainData, Block
from indexer.config import DEFAULT_WORKER_MEMORY_BUDGET_BYTES
from indexer.datasets import Dataset, needs_receipts
from indexer.freshness import Freshness
from indexer.store.blocks import store_batch
from indexer.store.ranges import coverage
from indexer.worker_budget import ByteBudget
from indexer.workflows.activity_names import INDEX_RANGE
from indexer.workflows.inputs import IndexRangeInput, IndexRangeResult

# A store normally takes milliseconds (COPY + upsert: 225k rows/s): these bounds only trip on a
# stuck one, with room for a slow database and for the largest ranges.
STORE_BASE_SECONDS = 30.0
STORE_ROWS_PER_SECOND = 10_000


def store_deadline(rows: int) -> float:
    """Seconds a store of `rows` rows (blocks, transactions, logs) may take before it is
    abandoned."""
    return STORE_BASE_SECONDS + rows / STORE_ROWS_PER_SECOND


async def store_within(
    pool: asyncpg.Pool,
    chain_id: int,
    blocks: list[Block],
    seconds: float,
    datasets: Sequence[Dataset],
) -> None:
    """store_batch on a pooled connection, abandoned (rolled back) after `seconds`.

    asyncpg waits forever for a connection lost in the middle of a COPY (its flow-control wait
    ignores every timeout), and the background heartbeat would keep such an activity alive
    until its start-to-close timeout; cancelled, the connection is closed and left out of the
    pool, and the activity fails to be retried.
    """
    async with asyncio.timeout(seconds), pool.acquire() as conn:
        await store_batch(conn, chain_id, blocks, datasets)


@dataclass
class _Totals:
    """What a range's batches stored, added up as they commit."""

    blocks: int = 0
    transactions: int = 0
    logs: int = 0
    rows: dict[Dataset, int] = field(default_factory=dict)


class IndexRangeActivities:
    def __init__(self, chains: ChainCache, budget: ByteBudget | None = None) -> None:
        self.chains = chains
        self.pool = chains.pool
        self.metrics = chains.metrics
        self.budget = budget or ByteBudget(DEFAULT_WORKER_MEMORY_BUDGET_BYTES, self.metrics)
        self.freshness = Freshness(self.pool, self.metrics)

    @activity.defn(name=INDEX_RANGE)
    async def index_range(self, request: IndexRangeInput) -> IndexRangeResult:
        """Fetch blocks start..end (with receipts when a dataset needs them) and store them
        with every dataset of the chain, batch by batch (activities/stream.py).

        Each batch is committed in its own transaction together with its blocks' entries in
        indexed_ranges and dataset_ranges, so a block counts as indexed exactly when its rows
        are committed and a crash loses at most the batches in flight. A transaction never
        spans a network fetch: it is held for one batch's store only, at most
        store_deadline(rows) (30 s + 1 s per 10,000 rows; a batch of MAX_BATCH_BYTES of answers
        is ~100k rows, so ~40 s at worst, well under a second normally). On a retry the blocks
        already in indexed_ranges are skipped.
        """
        return await self.index_blocks(request)

    async def index_blocks(self, request: IndexRangeInput) -> IndexRangeResult:
        """index_range's work, inside whichever activity calls it: also the live edge of the
        head scan (live_edge.py), so both paths store and record blocks the same way."""
        chain = await self.chains.chain(request.chain)
        with self.metrics.pg_query_duration.labels("coverage").time():
            covered = await coverage(self.pool, chain.id, request.start, request.end)
        if not covered.gaps:
            return IndexRangeResult(blocks=0, transactions=0, skipped=True)
        datasets = chain.config.datasets
        with self.metrics.pg_query_duration.labels("dataset_coverage").time():
            missing = await missing_by_dataset(
                self.pool, chain.id, datasets, request.start, request.end
            )
        receipts = needs_receipts(datasets)
        attributes: dict[str, str | int | bool] = {
            "chain": request.chain,
            "range.start": request.start,
            "range.end": request.end,
            "blocks": request.end - request.start + 1,
            "datasets": ",".join(datasets),
        }
        async with self.chains.fetcher(chain.config, chain.evm_chain_id) as rpc:
            totals = _Totals()
            # One span per side for the whole range, a child span per batch under each.
            fetch_span = tracer().start_span(
                "rpc.fetch_blocks", attributes={**attributes, "receipts": receipts}
            )
            store_span = tracer().start_span("postgres.store_range", attributes=attributes)

            async def fetch(first: int, last: int, linked: bool) -> FetchedBlocks:
                with tracer().start_as_current_span(
                    "rpc.fetch_batch",
                    context=trace.set_span_in_context(fetch_span),
                    attributes={"chain": request.chain, "batch.start": first, "batch.end": last},
                ):
                    started = time.perf_counter()
                    try:
                        fetched = await rpc.get_blocks_batch(
                            first, last, receipts=receipts, linked=linked
                        )
                    except (BadChainData, RpcUnavailable, RpcError) as exc:
                        raise chain_failure(exc) from exc
                    self._observe_phase(request.chain, "fetch", time.perf_counter() - started)
                    return fetched

            async def store(batch: Batch) -> None:
                blocks = batch.blocks
                with tracer().start_as_current_span(
                    "postgres.store_batch",
                    context=trace.set_span_in_context(store_span),
                    attributes={
                        "chain": request.chain,
                        "batch.start": blocks[0].number,
                        "batch.end": blocks[-1].number,
                        "batch.answer_bytes": batch.answer_bytes,
                    },
                ):
                    started = time.perf_counter()
                    await self._store_batch(chain.id, blocks, datasets)
                    seconds = time.perf_counter() - started
                    self._observe_phase(request.chain, "store", seconds)
                    self.metrics.pg_query_duration.labels("store_range").observe(seconds)
                await self.freshness.committed(request.chain, chain.id, chain.config, blocks)
                added = new_rows(blocks, missing)
                self.metrics.blocks_indexed.labels(request.chain).inc(len(blocks))
                for dataset, count in added.items():
                    self.metrics.rows_indexed.labels(request.chain, dataset).inc(count)
                    totals.rows[dataset] = totals.rows.get(dataset, 0) + count
                totals.blocks += len(blocks)
                totals.transactions += sum(len(b.transactions) for b in blocks)
                totals.logs += sum(
                    len(tx.receipt.logs) for b in blocks for tx in b.transactions if tx.receipt
                )

            try:
                async with heartbeating():
                    for low, high in covered.gaps:
                        await stream_range(
                            self.budget, request.chain, low, high, fetch=fetch, store=store
                        )
            except BadChainData as exc:  # a batch not linking to the one before
                raise chain_failure(exc) from exc
            finally:
                store_span.set_attributes(
                    {
                        "transactions": totals.transactions,
                        **{f"rows.{dataset}": count for dataset, count in totals.rows.items()},
                    }
                )
                fetch_span.end()
                store_span.end()
        return IndexRangeResult(
            blocks=totals.blocks, transactions=totals.transactions, logs=totals.logs
        )

    async def _store_batch(
        self, chain_id: int, blocks: list[Block], datasets: Sequence[Dataset]
    ) -> None:
        """One batch in one transaction, abandoned after its deadline."""
        deadline = store_deadline(stored_rows(blocks, datasets))
        try:
            await store_within(self.pool, chain_id, blocks, deadline, datasets)
        except BadChainData as exc:
            raise chain_failure(exc) from exc
        except TimeoutError as exc:
            raise ApplicationError(
                f"storing blocks {blocks[0].number}..{blocks[-1].number} took over"
                f" {deadline:.0f}s: PostgreSQL unreachable or stuck",
                type="StoreTimeout",
            ) from exc

    def _observe_phase(self, chain: str, phase: str, seconds: float) -> None:
        """Histogram with the current trace as exemplar, to jump from a slow bucket to a trace."""
        trace_id = current_trace_id()
        self.metrics.index_range_duration.labels(chain, phase).observe(
            seconds, exemplar={"trace_id": trace_id} if trace_id else None
        )
