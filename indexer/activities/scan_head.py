"""The scan_head activity (HeadScan): the latest available block, reorg repair near it, and the
gaps still to index."""

from __future__ import annotations

from dataclasses import replace

from temporalio import activity
from temporalio.exceptions import ApplicationError

from indexer.activities.chain_cache import ChainCache, chain_failure, knobs
from indexer.activities.heartbeat import heartbeating
from indexer.activities.index_range import IndexRangeActivities
from indexer.activities.live_edge import LiveEdge, QuietHeads, follow
from indexer.activities.reorg import ForkBelowFinality, ForkDeeperThanWindow
from indexer.activities.reorg_watch import ReorgWatch
from indexer.chain.errors import RpcError, RpcUnavailable
from indexer.chain.fetcher import Fetcher
from indexer.chain.model import BadChainData
from indexer.chain.witness import HEAD_GROWTH_BLOCKS
from indexer.freshness import Freshness
from indexer.store.chains import ChainRow, lower_head, pin_chain_id, set_head
from indexer.store.ranges import coverage
from indexer.workflows.activity_names import SCAN_HEAD
from indexer.workflows.inputs import Range, ScanHeadInput, ScanResult

MAX_GAPS_PER_SCAN = 10_000  # bounds the scan result's size; later gaps come in later scans


class ScanHeadActivities:
    def __init__(self, chains: ChainCache, ranges: IndexRangeActivities | None = None) -> None:
        self.chains = chains
        self.pool = chains.pool
        self.metrics = chains.metrics
        self._behind: set[str] = set()  # chains whose provider answered below their head
        self._watch = ReorgWatch(self.pool, self.metrics)
        self.freshness = Freshness(self.pool, self.metrics)
        self._edge = LiveEdge(ranges or IndexRangeActivities(chains))
        self._quiet = QuietHeads()

    @activity.defn(name=SCAN_HEAD)
    async def scan_head(self, request: ScanHeadInput | str) -> ScanResult:
        """Latest available block, reorg repair near it, and the gaps still to index.

        The chain's head is the highest block the provider ever answered. A provider answering
        below it is lagging or resyncing, not reorganising: nothing is checked or deleted, and
        only the blocks it can serve are scheduled (its lag is a metric, not a fork). Reorgs
        are repaired only above the chain's final block (its finality knob); the headers
        fetched for it are few when nothing changed (reorg_watch). Asked by a HeadScan that
        knows the live edge, a small gap at the head is indexed here, after the repair, and
        the scan follows the head for a while, skipping looks at a head that has not moved
        (live_edge.py).
        """
        # A HeadScan run started before ScanHeadInput existed passes the bare chain name.
        chain_name = request if isinstance(request, str) else request.chain
        await self.chains.chain(chain_name)  # an unknown chain fails here, uncounted
        self.metrics.head_scan_activities.labels(chain_name).inc()
        if isinstance(request, str) or not request.live_edge:
            return await self._scan(chain_name, live_edge=False)
        return await follow(lambda: self._scan(chain_name, live_edge=True))

    async def _scan(self, chain_name: str, live_edge: bool) -> ScanResult:
        """One look at the head: repair, the live edge when asked, the gaps left."""
        chain = await self.chains.chain(chain_name)
        config = chain.config
        async with heartbeating(), self.chains.fetcher(config, chain.evm_chain_id) as rpc:
            try:
                served, tip_hash = await rpc.latest_available_head()
                if live_edge and (same := self._quiet.unchanged(chain_name, served, tip_hash)):
                    return replace(same, knobs=knobs(config))
                await self._pin_chain_id(chain, rpc)
                await self.freshness.saw_head(chain.id, served)  # before the head moves
                head = await self._verified_head(chain.id, rpc, served)
                depth = 0
                behind = self._observe_lag(config.name, head, served)
                if not behind:
                    depth = await self._watch.repair(chain.id, config, rpc, served, tip_hash)
            except (BadChainData, RpcUnavailable, RpcError) as exc:
                raise chain_failure(exc) from exc
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
                self._watch.fork_below_finality(config.name, exc)
                # Retryable like a deep fork: the chain resumes once the provider answers the
                # stored final blocks again, or once a human deleted the wrong ones.
                raise ApplicationError(
                    f"{config.name}: {exc}; check the provider, or the chain's finality knob"
                    " (runbook: TindexerForkBelowFinality)",
                    type="ForkBelowFinality",
                ) from exc
            with self.metrics.pg_query_duration.labels("coverage").time():
                covered = await coverage(self.pool, chain.id, config.start_block, served)
        gaps, missing = covered.gaps, covered.missing_blocks
        if live_edge:
            gaps, indexed = await self._edge.index(
                config.name, gaps, served, config.live_edge_blocks
            )
            missing -= indexed
        result = ScanResult(
            head=served,
            missing_blocks=missing,
            gaps=[Range(start, end) for start, end in gaps[:MAX_GAPS_PER_SCAN]],
            knobs=knobs(config),
            reorg_depth=depth,
        )
        if live_edge and not behind:  # a lagging provider's every look is counted
            self._quiet.looked(chain_name, served, tip_hash, result)
        return result

    async def _pin_chain_id(self, chain: ChainRow, rpc: Fetcher) -> None:
        """Store the chain id its providers proved, once (the chain_id knob, else learned)."""
        evm = await rpc.pinned_chain_id()
        if chain.evm_chain_id != evm:
            await pin_chain_id(self.pool, chain.id, evm)

    async def _verified_head(self, chain_id: int, rpc: Fetcher, served: int) -> int:
        """The chain's head after this scan: it never goes back for a lagging provider, but a
        stored head far above `served` that no provider has (a lie adopted before heads were
        verified) is taken back to `served`, or to the highest stored block."""
        head = await set_head(self.pool, chain_id, served)
        if head - served > HEAD_GROWTH_BLOCKS and not await rpc.served_anywhere(head):
            activity.logger.warning(
                "chain %d: stored head %d is served by no provider: back to %d",
                chain_id,
                head,
                served,
            )
            head = await lower_head(self.pool, chain_id, served)
        return head

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
