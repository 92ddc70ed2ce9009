"""A misbehaving RPC provider: rate limits and timeouts all run long, bad data for a while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.support.faults import (
    FaultReport,
    assert_exactly_indexed,
    indexed_blocks,
    record,
    wait_covered,
    wait_indexed,
)
from tests.support.harness import Harness
from tests.support.simchain import clear_faults, set_faults

BACKLOG = 20_000


def rpc_requests(harness: Harness, chain: str, outcome: str) -> float:
    """tindexer_rpc_requests_total of the chain with `outcome`, summed over methods."""
    total = 0.0
    for family in harness.metrics.registry.collect():
        for s in family.samples:
            if (
                s.name == "tindexer_rpc_requests_total"
                and s.labels.get("chain") == chain
                and s.labels.get("outcome") == outcome
            ):
                total += s.value
    return total


async def test_provider_rate_limits_and_times_out_for_the_whole_run(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=1)
    await set_faults(
        url,
        rate_limit_ratio=0.3,
        retry_after_seconds=0.2,
        timeout_ratio=0.05,
        timeout_sleep_seconds=3,
    )
    row = await harness.add_chain(
        url,
        head_poll_interval_seconds=0.5,
        rpc_timeout_seconds=1,
        rpc_batch_size=100,
    )
    chain = row.config.name
    began = time.monotonic()
    async with harness.worker():
        await harness.start(chain)
        done = await wait_covered(harness, row.id, BACKLOG - 1, 150)
    await clear_faults(url)
    check = await assert_exactly_indexed(harness, row.id, url, BACKLOG - 1)
    registry = harness.metrics.registry
    rate_limited = registry.get_sample_value("tindexer_rate_limited_total", {"source": "rpc"})
    timeouts = rpc_requests(harness, chain, "timeout")
    assert rate_limited is not None and rate_limited > 0
    assert timeouts > 0
    record(
        FaultReport.from_check(
            "4-rpc-429-and-timeouts",
            "provider answers 429 (Retry-After 0.2 s) to 30 % and times out on 5 % of"
            " requests for the whole run (rpc_timeout_seconds=1, provider sleeps 3 s)",
            check,
            # The fault never ends: recovery is the whole backfill, done under the fault.
            recover_seconds=done - began,
            total_seconds=done - began,
            metrics={
                'tindexer_rate_limited_total{source="rpc"}': rate_limited,
                'tindexer_rpc_requests_total{outcome="rate_limited"}': rpc_requests(
                    harness, chain, "rate_limited"
                ),
                'tindexer_rpc_requests_total{outcome="timeout"}': timeouts,
                'tindexer_rpc_requests_total{outcome="ok"}': rpc_requests(harness, chain, "ok"),
            },
        )
    )


async def test_provider_sends_bad_data_for_a_while(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=1)
    row = await harness.add_chain(url, head_poll_interval_seconds=0.5, blocks_per_workflow=100)
    chain = row.config.name
    began = time.monotonic()
    async with harness.worker():
        await harness.start(chain)

        await wait_indexed(harness, row.id, BACKLOG // 10, 60, "a tenth of the backfill")
        # Per request: malformed (the body cut in half), JSON-RPC errors; per block: null
        # answers and a garbage parentHash.
        await set_faults(
            url,
            malformed_ratio=0.1,
            error_ratio=0.05,
            null_block_ratio=0.002,
            bad_parent_ratio=0.004,
        )
        at_fault = await indexed_blocks(harness.pool, row.id)
        await asyncio.sleep(6)
        await clear_faults(url)
        fault_end = time.monotonic()
        at_fault_end = await indexed_blocks(harness.pool, row.id)
        assert at_fault_end < BACKLOG, "the backfill finished while the faults were on"
        done = await wait_covered(harness, row.id, BACKLOG - 1, 120)
    check = await assert_exactly_indexed(harness, row.id, url, BACKLOG - 1)
    registry = harness.metrics.registry
    # Cut bodies count as bad data since the client checks every answer; JSON-RPC errors as
    # errors. Only the two together make a failure near certain in 6 s on a slow machine.
    errors = rpc_requests(harness, chain, "error") + rpc_requests(harness, chain, "bad_data")
    failed = registry.get_sample_value(
        "tindexer_activity_duration_seconds_count", {"activity": "index_range", "outcome": "error"}
    )
    assert errors > 0
    assert failed is not None and failed > 0  # bad parent links fail the whole fetch
    record(
        FaultReport.from_check(
            "5-rpc-bad-data",
            "for 6 s mid-backfill: 10 % of bodies cut in half (malformed JSON), 5 % JSON-RPC"
            " errors, 0.2 % null blocks, 0.4 % blocks with a parentHash that does not link",
            check,
            recover_seconds=done - fault_end,
            total_seconds=done - began,
            metrics={
                'tindexer_rpc_requests_total{outcome=~"error|bad_data"}': errors,
                'tindexer_activity_duration_seconds_count{activity="index_range",'
                'outcome="error"}': failed,
            },
            details={
                "blocks_indexed_at_fault_start": at_fault,
                "blocks_indexed_at_fault_end": at_fault_end,
            },
        )
    )
