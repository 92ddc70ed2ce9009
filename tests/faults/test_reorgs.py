"""Reorgs of depth 1 to 32 at the head during live sync, on the simulated chain and on anvil;
a fork deeper than the reorg window, refused."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from indexer.store.chains import update_chain
from tests.support.chaindata import ExpectedBlock, expected_blocks, mine_with_transactions, rpc
from tests.support.faults import (
    POLL_SECONDS,
    UNAVAILABLE,
    FaultReport,
    assert_exactly_indexed,
    caught_up,
    record,
    wait_covered,
)
from tests.support.harness import Harness
from tests.support.simchain import sim_post
from tests.support.waiting import wait_until

BACKLOG = 20_000
SIM_DEPTHS = [1, 2, 3, 5, 8, 13, 21, 32]
RACED_DEPTH = 5  # a reorg raced by a block mined just before it, on purpose
ANVIL_DEPTHS = [1, 7, 32]
DEEP_BACKLOG = 1_000
WINDOW = 16  # the deep-fork case's max_reorg_depth


def reorg_samples(harness: Harness, chain: str) -> tuple[float, float]:
    """(tindexer_reorgs_total, tindexer_reorg_depth_sum) of the chain."""
    registry = harness.metrics.registry
    count = registry.get_sample_value("tindexer_reorgs_total", {"chain": chain}) or 0.0
    depth = registry.get_sample_value("tindexer_reorg_depth_sum", {"chain": chain}) or 0.0
    return count, depth


async def old_transactions_left(harness: Harness, chain_id: int, hashes: list[bytes]) -> int:
    return int(
        await harness.pool.fetchval(
            "SELECT count(*) FROM transactions WHERE chain_id = $1 AND hash = ANY($2::bytea[])",
            chain_id,
            hashes,
        )
    )


async def test_sim_chain_reorgs_during_live_sync(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=2, block_time=1.0)
    row = await harness.add_chain(url, head_poll_interval_seconds=0.2)
    chain = row.config.name
    began = time.monotonic()
    recoveries: list[float] = []

    async def reorg_at_head(depth: int, race: bool = False) -> tuple[bool, float]:
        """Reorg `depth` blocks once every block is stored, wait for the repair; whether the
        reorg replaced exactly the blocks stored, and how many reorgs the indexer counted.

        A block mined between the check and the reorg (by chance: a few ms of each second; or
        on purpose: `race`) moves the replaced window up by one: the lowest block read before
        stays, with its transactions, and the reorg the indexer sees may be shallower, or
        (depth 1) no reorg at all.
        """
        head = await caught_up(harness, row.id, url)
        before = await harness.stored_blocks(row.id, head - depth + 1, head)
        count_before, _ = reorg_samples(harness, chain)
        if race:
            await sim_post(url, "/_sim/mine", {"blocks": 1})
        reorged_at = (await sim_post(url, "/_sim/reorg", {"depth": depth}))["head"]
        fault_end = time.monotonic()
        low, high = head - depth - 1, reorged_at
        expected = await expected_blocks(url, low, high)
        replaced = [n for n in before if n > reorged_at - depth]
        assert all(expected[n].hash != before[n].hash for n in replaced)
        old_txs = [tx for n in replaced for tx in before[n].tx_hashes]
        exact = reorged_at == head

        async def repaired() -> bool:
            return (
                (reorg_samples(harness, chain)[0] > count_before or not exact)
                and await harness.stored_blocks(row.id, low, high) == expected
                and await old_transactions_left(harness, row.id, old_txs) == 0
            )

        async def diagnosis() -> str:
            stored = await harness.stored_blocks(row.id, low, high)
            numbers = sorted(expected.keys() | stored.keys())
            wrong = [n for n in numbers if stored.get(n) != expected.get(n)]
            return (
                f"blocks {low}..{high} missing or stale: {wrong}; old transactions left:"
                f" {await old_transactions_left(harness, row.id, old_txs)}; reorgs counted"
                f" since: {reorg_samples(harness, chain)[0] - count_before}; ranges"
                f" {(await harness.ranges(row.id))[-3:]}; scan failure"
                f" {await harness.head_scan_failure(chain)}; failing ranges"
                f" {await harness.range_failures(chain)}"
            )

        # 90 s: a range that met the reorg mid-fetch retries with backoff (1, 2, 4, 8, 16 s…).
        repaired_at = await wait_until(
            repaired,
            90,
            f"the depth-{depth} reorg",
            POLL_SECONDS,
            retry_on=UNAVAILABLE,
            diagnose=diagnosis,
        )
        recoveries.append(repaired_at - fault_end)
        return exact, reorg_samples(harness, chain)[0] - count_before

    raced = 0
    detected = 0.0
    async with harness.worker():
        await harness.start(chain)
        await wait_covered(harness, row.id, BACKLOG - 1, 90)
        for depth in SIM_DEPTHS:
            exact, counted = await reorg_at_head(depth)
            raced += not exact
            detected += counted
            if exact:
                assert counted == 1, f"the depth-{depth} reorg was counted {counted} times"
        count, depth_sum = reorg_samples(harness, chain)
        # One more, raced by a block on purpose: its lowest block read before is not replaced.
        exact, counted = await reorg_at_head(RACED_DEPTH, race=True)
        assert not exact
        detected += counted
        final_head = await caught_up(harness, row.id, url)
    check = await assert_exactly_indexed(harness, row.id, url, final_head)
    assert reorg_samples(harness, chain)[0] == detected  # nothing counted after its repair
    if not raced:
        assert count == len(SIM_DEPTHS)  # each reorg detected, and detected once
        assert depth_sum == sum(SIM_DEPTHS)
    record(
        FaultReport.from_check(
            "6-reorgs-sim-chain",
            f"reorgs of depth {SIM_DEPTHS} at the head of a growing chain (1 block/s)"
            f" after a 20,000-block backfill, then one of depth {RACED_DEPTH} raced by a new"
            " block",
            check,
            recover_seconds=max(recoveries),
            total_seconds=time.monotonic() - began,
            metrics={"tindexer_reorgs_total": count, "tindexer_reorg_depth_sum": depth_sum},
            details={
                "recover_seconds_per_reorg": [round(r, 2) for r in recoveries],
                "reorgs_raced_by_a_new_block": raced,
            },
        )
    )


async def test_sim_chain_fork_deeper_than_the_window_stops_the_chain_and_deletes_nothing(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    """The fork replaces the whole window and the block below it (low - 1).

    Deleting the window alone would leave block low - 1 of the old fork stored: the range
    re-indexed above it would fail its parent check (ParentMismatch) at every attempt, for ever.
    """
    url = sim_chain(backlog=DEEP_BACKLOG, txs_per_block=1)
    row = await harness.add_chain(
        url, head_poll_interval_seconds=0.1, blocks_per_workflow=250, max_reorg_depth=WINDOW
    )
    chain = row.config.name
    head = DEEP_BACKLOG - 1
    async with harness.worker():
        await harness.start(chain)
        await wait_covered(harness, row.id, head, 60)
        before = await harness.stored_blocks(row.id)
        await sim_post(url, "/_sim/reorg", {"depth": WINDOW + 1})

        async def refused_or_changed() -> bool:
            too_deep = harness.sample("tindexer_chain_fork_too_deep", chain=chain) == 1
            return too_deep or await harness.stored_blocks(row.id) != before

        await wait_until(refused_or_changed, 30, "the deep fork to be refused")
        assert await harness.stored_blocks(row.id) == before  # nothing deleted
        kind, message = await harness.head_scan_failed(chain)
        assert kind == "ForkDeeperThanWindow"
        assert f"blocks {head - WINDOW}..{head - WINDOW + 1} differ" in message, message
        assert reorg_samples(harness, chain) == (0, 0)
        assert await harness.stored_blocks(row.id) == before

        # Nothing is wedged: with the window raised past the fork, the next scan repairs it.
        await update_chain(
            harness.pool, chain, lambda c: c.model_copy(update={"max_reorg_depth": 2 * WINDOW})
        )
        expected = await expected_blocks(url, 0, head)

        async def repaired() -> bool:
            return await harness.stored_blocks(row.id) == expected

        await wait_until(repaired, 60, "the deep fork to be repaired", POLL_SECONDS)
        assert harness.sample("tindexer_chain_fork_too_deep", chain=chain) == 0
    await assert_exactly_indexed(harness, row.id, url, head)
    assert reorg_samples(harness, chain) == (1, WINDOW + 1)


# --- anvil ----------------------------------------------------------------------------------


@pytest.mark.anvil
async def test_anvil_reorgs_by_snapshot_revert_and_remine(harness: Harness, anvil: str) -> None:
    await rpc(anvil, "evm_setAutomine", False)
    await mine_with_transactions(anvil, 20, value=10**15)
    await rpc(anvil, "anvil_mine", hex(2_000))
    row = await harness.add_chain(anvil, head_poll_interval_seconds=0.2, blocks_per_workflow=200)
    chain = row.config.name
    began = time.monotonic()
    recoveries: list[float] = []
    async with harness.worker():
        await harness.start(chain)
        for n, depth in enumerate(ANVIL_DEPTHS):
            base = int(await rpc(anvil, "eth_blockNumber"), 16)
            snapshot = await rpc(anvil, "evm_snapshot")
            await mine_with_transactions(anvil, depth, value=10**16 * (n + 1))
            head = base + depth
            await wait_covered(harness, row.id, head, 60)
            old = await harness.stored_blocks(row.id, base + 1, head)
            assert old == await expected_blocks(anvil, base + 1, head)
            count_before, _ = reorg_samples(harness, chain)
            assert await rpc(anvil, "evm_revert", snapshot)
            await mine_with_transactions(anvil, depth, value=10**17 * (n + 1))
            fault_end = time.monotonic()
            expected = await expected_blocks(anvil, base + 1, head)
            assert all(expected[b].hash != old[b].hash for b in old)
            old_txs = [tx for block in old.values() for tx in block.tx_hashes]
            assert len(old_txs) == depth

            async def repaired(
                low: int = base + 1,
                high: int = head,
                expected: dict[int, ExpectedBlock] = expected,
                old_txs: list[bytes] = old_txs,
                count_before: float = count_before,
            ) -> bool:
                return (
                    reorg_samples(harness, chain)[0] > count_before
                    and await harness.stored_blocks(row.id, low, high) == expected
                    and await old_transactions_left(harness, row.id, old_txs) == 0
                )

            # 90 s: a range that met the reorg mid-fetch retries with backoff (1, 2, 4, 8, 16 s…).
            repaired_at = await wait_until(
                repaired, 90, f"the depth-{depth} reorg", POLL_SECONDS, retry_on=UNAVAILABLE
            )
            recoveries.append(repaired_at - fault_end)
    final_head = int(await rpc(anvil, "eth_blockNumber"), 16)
    check = await assert_exactly_indexed(harness, row.id, anvil, final_head)
    count, depth_sum = reorg_samples(harness, chain)
    assert count == len(ANVIL_DEPTHS)
    assert depth_sum == sum(ANVIL_DEPTHS)
    record(
        FaultReport.from_check(
            "6-reorgs-anvil",
            f"anvil: evm_snapshot, mine, evm_revert, re-mine other transactions; depths"
            f" {ANVIL_DEPTHS} at the head after a {final_head - sum(ANVIL_DEPTHS) + 1}-block"
            " backfill",
            check,
            recover_seconds=max(recoveries),
            total_seconds=time.monotonic() - began,
            metrics={"tindexer_reorgs_total": count, "tindexer_reorg_depth_sum": depth_sum},
            details={"recover_seconds_per_reorg": [round(r, 2) for r in recoveries]},
        )
    )
