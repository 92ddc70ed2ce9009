"""A reorg on anvil leaves no log, transaction or withdrawal of the replaced blocks.

anvil reorgs by evm_snapshot, mining, evm_revert and mining the same heights again with other
transactions. The first fork's blocks are full of logs and the second's nearly empty, so a
reorg that replaced the block rows but kept their children would leave logs at log indexes
the new blocks do not reach (and their transactions at indexes they do not reach) — rows no
upsert overwrites. After each repair the whole chain must match the node exactly, withdrawals
included (anvil mines none, so none may be stored).
"""

from __future__ import annotations

import time

import pytest

from tests.support.chaindata import ExpectedBlock, expected_blocks
from tests.support.db_compare import assert_matches_node
from tests.support.evm.jsonrpc import JsonRpc
from tests.support.evm.workload import Workload
from tests.support.faults import (
    POLL_SECONDS,
    UNAVAILABLE,
    FaultReport,
    assert_exactly_indexed,
    record,
    wait_covered,
)
from tests.support.harness import Harness
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anvil

DEPTHS = [1, 4, 12]
# Rows of the replaced blocks' transactions still stored: (logs, transactions).
OLD_ROWS = """
SELECT (SELECT count(*) FROM logs WHERE chain_id = $1 AND tx_hash = ANY($2::bytea[])),
       (SELECT count(*) FROM transactions WHERE chain_id = $1 AND hash = ANY($2::bytea[]))
"""
# The transactions of blocks low..high, with how many logs each has stored.
WINDOW_ROWS = """
SELECT t.hash, count(l.log_index) AS logs
  FROM transactions t
  LEFT JOIN logs l ON l.chain_id = t.chain_id AND l.block_number = t.block_number
                  AND l.tx_index = t.tx_index
 WHERE t.chain_id = $1 AND t.block_number BETWEEN $2 AND $3
 GROUP BY t.hash
"""


def reorgs_counted(harness: Harness, chain: str) -> float:
    return harness.sample("tindexer_reorgs_total", chain=chain)


async def test_anvil_reorg_leaves_no_log_of_the_replaced_blocks(
    harness: Harness, anvil: str
) -> None:
    async with JsonRpc(anvil) as node:
        workload = Workload(node, seed=6)
        await workload.setup()
        await workload.mine(30)
        await workload.mine_empty(30)
        row = await harness.add_chain(anvil, head_poll_interval_seconds=0.2, blocks_per_workflow=25)
        chain = row.config.name
        began = time.monotonic()
        recoveries: list[float] = []
        replaced_logs = 0
        async with harness.worker():
            await harness.start(chain)
            for depth in DEPTHS:
                base = await workload.head()
                snapshot = await workload.snapshot()
                await workload.mine(depth, most=10, least=8)  # full of logs
                head = base + depth
                await wait_covered(harness, row.id, head, 60)
                old = await harness.pool.fetch(WINDOW_ROWS, row.id, base + 1, head)
                old_hashes = [bytes(r["hash"]) for r in old]
                assert len(old_hashes) >= 8 * depth
                old_logs = sum(r["logs"] for r in old)
                assert old_logs > 0, "the first fork's blocks were stored without their logs"
                replaced_logs += old_logs
                counted_before = reorgs_counted(harness, chain)

                await workload.revert(snapshot)
                await workload.mine(depth, most=2, least=1)  # other, fewer transactions
                fault_end = time.monotonic()
                expected = await expected_blocks(anvil, base + 1, head)
                assert not set(old_hashes) & {h for b in expected.values() for h in b.tx_hashes}

                async def old_rows_left(hashes: list[bytes] = old_hashes) -> tuple[int, ...]:
                    return tuple(await harness.pool.fetchrow(OLD_ROWS, row.id, hashes))

                async def repaired(
                    low: int = base + 1,
                    high: int = head,
                    expected: dict[int, ExpectedBlock] = expected,
                    counted_before: float = counted_before,
                ) -> bool:
                    return (
                        reorgs_counted(harness, chain) > counted_before
                        and await harness.stored_blocks(row.id, low, high) == expected
                        and await old_rows_left() == (0, 0)
                    )

                async def diagnosis(low: int = base + 1, high: int = head) -> str:
                    return (
                        f"old (logs, transactions) left {await old_rows_left()};"
                        f" blocks {low}..{high} stored"
                        f" {sorted(await harness.stored_blocks(row.id, low, high))}; reorgs"
                        f" counted {reorgs_counted(harness, chain)}; failing ranges"
                        f" {await harness.range_failures(chain)}"
                    )

                # 90 s: a range that met the reorg mid-fetch retries with backoff.
                repaired_at = await wait_until(
                    repaired,
                    90,
                    f"the depth-{depth} reorg",
                    POLL_SECONDS,
                    retry_on=UNAVAILABLE,
                    diagnose=diagnosis,
                )
                recoveries.append(repaired_at - fault_end)
                compared = await assert_matches_node(harness.pool, row.id, anvil, head)
        final_head = await workload.head()
    check = await assert_exactly_indexed(harness, row.id, anvil, final_head)
    compared = await assert_matches_node(harness.pool, row.id, anvil, final_head)
    assert reorgs_counted(harness, chain) == len(DEPTHS)
    record(
        FaultReport.from_check(
            "6-reorgs-anvil-logs",
            f"anvil: evm_snapshot, mine blocks full of logs, evm_revert, re-mine fewer"
            f" transactions; depths {DEPTHS} at the head",
            check,
            recover_seconds=max(recoveries),
            total_seconds=time.monotonic() - began,
            metrics={"tindexer_reorgs_total": reorgs_counted(harness, chain)},
            details={
                "recover_seconds_per_reorg": [round(r, 2) for r in recoveries],
                "logs_replaced": replaced_logs,
                "rows_compared": compared.rows,
            },
        )
    )
