"""Activities that touch the chain and the block store: index a range, scan the head."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from exporter.tracing import current_trace_id, tracer
from indexer.activities.chain_cache import ChainCache, knobs
from indexer.activities.datasets import missing_by_dataset, new_rows, stored_rows
from indexer.activities.heartbeat import heartbeating
from indexer.activities.reorg import ForkBelowFinality, ForkDeeperThanWindow
from indexer.activities.reorg_watch import Outcome, ReorgWatch
from indexer.activities.stream import Batch, stream_range
from indexer.chain.budget import ByteBudget
from indexer.chain.model import BadChainData, Block
from indexer.chain.rpc import RpcClient, RpcError, RpcUnavailable
from indexer.config import DEFAULT_WORKER_MEMORY_BUDGET_BYTES, ChainConfig
from indexer.datasets import Dataset, needs_receipts
from indexer.store.blocks import store_range
from indexer.store.chains import set_finalized, set_head
from indexer.store.ranges import coverage
from indexer.workflows.inputs import (
    IndexRangeInput,
    IndexRangeResult,
    Range,
    ScanHeadInput,
    ScanResult,
)

MAX_GAPS_PER_SCAN = 10_000  # bounds the scan result's size; later gaps come in later scans
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
    """store_range on a pooled connection, abandoned (rolled back) after `seconds`.

    asyncpg waits forever for a connection lost in the middle of a COPY (its flow-control wait
    ignores every timeout), and the background heartbeat would keep such an activity alive
    until its start-to-close timeout; cancelled, the connection is closed and left out of the
    pool, and the activity fails to be retried.
    """
    async with asyncio.timeout(seconds), pool.acquire() as conn:
        await store_range(conn, chain_id, blocks, datasets)


def _chain_failure(exc: Exception) -> ApplicationError:
    """Bad chain data and exhausted RPC retries become a clear, retryable activity failure."""
    return ApplicationError(f"{type(exc).__name__}: {exc}", type=type(exc).__name__)


@dataclass
class _Totals:
    """What a range's batches stored, added up as they commit."""

    blocks: int = 0
    transactions: int = 0
    logs: int = 0
    rows: dict[Dataset, int] = field(default_factory=dict)


class BlockActivities:
    def __init__(self, chains: ChainCache, budget: ByteBudget | None = None) -> None:
        self.chains = chains
        self.pool = chains.pool
        self.metrics = chains.metrics
        self.budget = budget or ByteBudget(DEFAULT_WORKER_MEMORY_BUDGET_BYTES, self.metrics)
        self._behind: set[str] = set()  # chains whose provider answered below their head
        self._watch = ReorgWatch(self.pool, self.metrics)
        self._finalized: dict[int, int | None] = {}  # last final block written, by chain id
        self._below_final: set[str] = set()  # chains stopped on a fork below finality

    @activity.defn(name="index_range")
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
        rpc = self.chains.rpc(chain.config)
        receipts = needs_receipts(datasets)
        attributes: dict[str, str | int | bool] = {
            "chain": request.chain,
            "range.start": request.start,
            "range.end": request.end,
            "blocks": request.end - request.start + 1,
            "datasets": ",".join(datasets),
        }
        totals = _Totals()
        # One span per side for the whole range, a child span per batch under each.
        fetch_span = tracer().start_span(
            "rpc.fetch_blocks", attributes={**attributes, "receipts": receipts}
        )
        store_span = tracer().start_span("postgres.store_range", attributes=attributes)

        async def fetch(
            first: int, last: int, get: Callable[[], Awaitable[list[Block]]]
        ) -> list[Block]:
            with tracer().start_as_current_span(
                "rpc.fetch_batch",
                context=trace.set_span_in_context(fetch_span),
                attributes={"chain": request.chain, "batch.start": first, "batch.end": last},
            ):
                started = time.perf_counter()
                try:
                    blocks = await get()
                except (BadChainData, RpcUnavailable, RpcError) as exc:
                    raise _chain_failure(exc) from exc
                self._observe_phase(request.chain, "fetch", time.perf_counter() - started)
                return blocks

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
                        rpc, self.budget, low, high, receipts=receipts, fetch=fetch, store=store
                    )
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
            raise _chain_failure(exc) from exc
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

    @activity.defn(name="scan_head")
    async def scan_head(self, request: ScanHeadInput | str) -> ScanResult:
        """Latest available block, reorg repair near it, and the gaps still to index.

        The chain's head is the highest block the provider ever answered. A provider answering
        below it is lagging or resyncing, not reorganising: nothing is checked or deleted, and
        only the blocks it can serve are scheduled (its lag is a metric, not a fork). Reorgs
        are repaired only above the chain's final block (its finality knob); the headers
        fetched for it are few when nothing changed (reorg_watch).
        """
        # A HeadScan run started before ScanHeadInput existed passes the bare chain name.
        chain_name = request if isinstance(request, str) else request.chain
        chain = await self.chains.chain(chain_name)
        config = chain.config
        rpc = self.chains.rpc(config)
        async with heartbeating():
            try:
                served, tip_hash = await rpc.latest_available_head()
                head = await set_head(self.pool, chain.id, served)
                depth = 0
                if not self._observe_lag(config.name, head, served):
                    depth = await self._repair_reorg(chain.id, config, rpc, served, tip_hash)
            except (BadChainData, RpcUnavailable, RpcError) as exc:
                raise _chain_failure(exc) from exc
            except ForkDeeperThanWindow as exc:
                self.metrics.fork_too_deep.labels(config.name).set(1)
                activity.logger.error("%s: %s", config.name, exc)
                # Retryable on purpose: HeadScan keeps scanning patiently, so the chain resumes
                # by itself once max_reorg_depth is raised past the fork (or the provider is
                # back on the stored fork); meanwhile nothing above the fork is indexed.
                raise ApplicationError(
                    f"{config.name}: {exc}; raise max_reorg_depth past the fork or check the"
                    " provider (runbook: TindexerForkDeeperThanWindow)",
                    type="ForkDeeperThanWindow",
                ) from exc
            except ForkBelowFinality as exc:
                self._fork_below_finality(config.name, exc)
                # Retryable like a deep fork: the chain resumes once the provider answers the
                # stored final blocks again, or once a human deleted the wrong ones.
                raise ApplicationError(
                    f"{config.name}: {exc}; check the provider, or the chain's finality knob"
                    " (runbook: TindexerForkBelowFinality)",
                    type="ForkBelowFinality",
                ) from exc
            with self.metrics.pg_query_duration.labels("coverage").time():
                covered = await coverage(self.pool, chain.id, config.start_block, served)
        return ScanResult(
            head=served,
            missing_blocks=covered.missing_blocks,
            gaps=[Range(start, end) for start, end in covered.gaps[:MAX_GAPS_PER_SCAN]],
            knobs=knobs(config),
            reorg_depth=depth,
        )

    def _observe_lag(self, chain_name: str, head: int, served: int) -> bool:
        """Count a provider whose latest block is below the chain's head; log when that starts
        and ends (not at every scan of a long resync)."""
        lag = head - served
        self.metrics.head_lag.labels(chain_name).set(lag)
        if lag > 0:
            self.metrics.head_regressions.labels(chain_name).inc()
        was_behind = chain_name in self._behind
        if lag > 0 and not was_behind:
            self._behind.add(chain_name)
            activity.logger.warning(
                "%s: the provider's latest block %d is %d below the chain's head %d: a lagging"
                " node, not a reorg; nothing is deleted or scheduled above it until it catches up",
                chain_name,
                served,
                lag,
                head,
            )
        elif lag <= 0 and was_behind:
            self._behind.discard(chain_name)
            activity.logger.info("%s: the provider caught up at block %d", chain_name, served)
        return lag > 0

    def _fork_below_finality(self, chain_name: str, exc: ForkBelowFinality) -> None:
        """Count a fork at or below the final block once per episode; the gauge holds while
        it lasts (the alert's signal)."""
        if chain_name not in self._below_final:
            self._below_final.add(chain_name)
            self.metrics.forks_below_finality.labels(chain_name).inc()
        self.metrics.fork_below_finality.labels(chain_name).set(1)
        activity.logger.error("%s: %s", chain_name, exc)

    async def _repair_reorg(
        self,
        chain_id: int,
        config: ChainConfig,
        rpc: RpcClient,
        head: int,
        tip_hash: bytes | None,
    ) -> int:
        """Repair a fork above the final block and within max_reorg_depth of `head`, fetching
        only the headers that may have changed (reorg_watch); the depth replaced, 0 if none."""
        chain_name = config.name
        outcome: Outcome = await self._watch.check(chain_id, config, rpc, head, tip_hash)
        self.metrics.fork_too_deep.labels(chain_name).set(0)
        self.metrics.fork_below_finality.labels(chain_name).set(0)
        self._below_final.discard(chain_name)
        await self._record_finalized(chain_id, chain_name, outcome.finalized)
        repair = outcome.repair
        if repair is None:
            return 0
        self.metrics.reorgs.labels(chain_name).inc()
        self.metrics.reorg_depth.labels(chain_name).observe(repair.depth)
        activity.logger.warning(
            "reorg on %s: blocks %d..%d replaced (depth %d)",
            chain_name,
            repair.start,
            repair.end,
            repair.depth,
        )
        return repair.depth

    async def _record_finalized(
        self, chain_id: int, chain_name: str, finalized: int | None
    ) -> None:
        """The final block on /metrics (no series while nothing is final) and, when it changed,
        in the chains row (for status)."""
        if finalized is not None:
            self.metrics.finalized_block.labels(chain_name).set(finalized)
        else:  # (removing a series that was never set is a no-op)
            self.metrics.finalized_block.remove(chain_name)
        if chain_id in self._finalized and self._finalized[chain_id] == finalized:
            return
        await set_finalized(self.pool, chain_id, finalized)
        self._finalized[chain_id] = finalized
