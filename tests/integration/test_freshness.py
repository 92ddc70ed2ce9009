"""The freshness histogram is true: anvil mines blocks when the test says, the test watches each
block become queryable, and what the indexer recorded lies between the test's own readings. And
a head scan records each block's first sighting once, for new blocks only."""

from __future__ import annotations

import time

import pytest

from indexer.store.chains import set_head
from indexer.store.sightings import SIGHTING_MAX_BLOCKS, record_sighting
from tests.support.chaindata import rpc
from tests.support.harness import Harness, fully_indexed
from tests.support.waiting import wait_until

BACKFILL = 32  # blocks mined before the indexer starts: a backlog, never counted
LIVE_BLOCKS = 5
COUNT = "tindexer_block_freshness_seconds_count"
FRESHNESS = "tindexer_block_freshness_seconds_sum"
AGE = "tindexer_block_age_at_commit_seconds_sum"


async def stored(harness: Harness, chain_id: int, number: int) -> bool:
    return bool(
        await harness.pool.fetchval(
            "SELECT count(*) FROM blocks WHERE chain_id = $1 AND number = $2", chain_id, number
        )
    )


async def first_seen(harness: Harness, chain_id: int, number: int) -> float:
    """When the indexer's head scan first saw the block (the database's clock)."""
    seen = await harness.pool.fetchval(
        "SELECT extract(epoch FROM seen_at)::float8 FROM head_sightings"
        " WHERE chain_id = $1 AND $2 BETWEEN first_block AND last_block",
        chain_id,
        number,
    )
    assert seen is not None, f"no sighting of block {number}"
    return float(seen)


@pytest.mark.anvil
async def test_recorded_freshness_lies_between_appearance_and_the_tests_own_readings(
    harness: Harness, anvil: str
) -> None:
    await rpc(anvil, "anvil_mine", hex(BACKFILL))
    row = await harness.add_chain(
        anvil, blocks_per_workflow=8, head_poll_interval_seconds=0.2, block_time_seconds=1
    )
    chain = row.config.name

    def sample(name: str) -> float:
        return harness.sample(name, chain=chain)

    async with harness.worker():
        await harness.start(chain)
        await wait_until(lambda: fully_indexed(harness, chain, BACKFILL), 60, "the backfill")
        # The backlog and the first head were never seen appearing: nothing is counted.
        assert sample(COUNT) == 0

        for live in range(1, LIVE_BLOCKS + 1):
            number = BACKFILL + live
            freshness_before, age_before = sample(FRESHNESS), sample(AGE)
            before = time.time()  # the block cannot exist earlier
            await rpc(anvil, "anvil_mine", "0x1")
            absent_at = before  # the last reading at which the block was not stored
            recorded_at = 0.0  # the first reading after its freshness was observed

            async def queryable(number: int = number) -> bool:
                nonlocal absent_at
                now = time.time()
                if await stored(harness, row.id, number):
                    return True
                absent_at = now
                return False

            async def observed(live: int = live) -> bool:
                nonlocal recorded_at
                done = sample(COUNT) >= live
                recorded_at = time.time()
                return done

            await wait_until(queryable, 30, f"block {number} stored", interval=0.01)
            await wait_until(observed, 10, f"block {number}'s freshness", interval=0.01)
            assert sample(COUNT) == live, "one observation per block"
            freshness = sample(FRESHNESS) - freshness_before
            age = sample(AGE) - age_before
            seen = await first_seen(harness, row.id, number)
            commit = seen + freshness
            block = await rpc(anvil, "eth_getBlockByNumber", hex(number), False)
            timestamp = int(block["timestamp"], 16)

            # Seen at the head only once it existed; committed after the test's last reading
            # without it and before the test read the observation.
            assert before <= seen <= commit
            assert absent_at < commit <= recorded_at, (absent_at, commit, recorded_at)
            # So the recorded freshness is within the test's own appearance-to-queryable time.
            assert 0 < freshness <= recorded_at - before
            # The age is measured at the same commit, from the block's own timestamp.
            assert age == pytest.approx(commit - timestamp, abs=0.01)

    assert sample(COUNT) == LIVE_BLOCKS


async def test_a_scan_records_only_the_blocks_no_scan_saw_before(harness: Harness) -> None:
    row = await harness.add_chain("http://127.0.0.1:1")
    sql = "SELECT first_block, last_block FROM head_sightings WHERE chain_id = $1 ORDER BY 1"

    async def recorded() -> list[tuple[int, int]]:
        return [tuple(r) for r in await harness.pool.fetch(sql, row.id)]

    await record_sighting(harness.pool, row.id, 10)  # the first head is a backlog
    assert await recorded() == []
    await set_head(harness.pool, row.id, 10)
    await record_sighting(harness.pool, row.id, 15)
    await set_head(harness.pool, row.id, 15)
    await record_sighting(harness.pool, row.id, 15)  # nothing new
    await record_sighting(harness.pool, row.id, 12)  # a lagging provider: nothing new
    assert await recorded() == [(11, 15)]
    # A scan that recorded its blocks and then failed left the head at 15: its retry sees
    # only what is newer than its own sighting.
    await record_sighting(harness.pool, row.id, 18)
    await record_sighting(harness.pool, row.id, 20)
    # A jump (the indexer was down) reveals old blocks: only the newest are news.
    await record_sighting(harness.pool, row.id, 5_000)
    assert await recorded() == [
        (11, 15),
        (16, 18),
        (19, 20),
        (5_000 - SIGHTING_MAX_BLOCKS + 1, 5_000),
    ]
