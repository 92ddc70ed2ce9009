"""A lying provider, end to end: a real worker indexing the simulated chain through the proxy.

A block whose transaction carries a 4,000-digit value used to be accepted by the client and
then broke PostgreSQL's COPY (or was stored). It must be refused as bad chain data, counted
and retried, nothing stored for its range, and the range indexed exactly once the provider
stops lying.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness, fully_indexed
from tests.support.provider_proxy import ProviderProxy
from tests.support.simchain import sim_head
from tests.support.waiting import wait_until

LIE_BLOCK = 75  # in the range 50-99 only (the range 100-149 fetches 99 for its parent link)
HUGE_VALUE = "0x" + "1" * 4000


def huge_value_in_block(number: int) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def rewrite(call: dict[str, Any], answer: dict[str, Any]) -> None:
        if call.get("method") == "eth_getBlockByNumber" and call["params"] == [hex(number), True]:
            answer["result"]["transactions"][0]["value"] = HUGE_VALUE

    return rewrite


def covered(ranges: list[tuple[int, int]], low: int, high: int) -> bool:
    """Whether one indexed range holds low..high."""
    return any(start <= low and high <= end for start, end in ranges)


def bad_data_requests(harness: Harness, chain: str) -> float:
    labels = {
        "chain": chain,
        "provider": "default",
        "method": "eth_getBlockByNumber",
        "outcome": "bad_data",
    }
    return harness.metrics.registry.get_sample_value("tindexer_rpc_requests_total", labels) or 0


async def test_a_block_with_a_4000_digit_value_is_never_stored_and_its_range_is_retried(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=150, txs_per_block=2)
    head = await sim_head(url)
    assert head == 149
    proxy = ProviderProxy(url)
    async with proxy.running() as proxy_url:
        proxy.rewrite = huge_value_in_block(LIE_BLOCK)
        row = await harness.add_chain(proxy_url, blocks_per_workflow=50, rpc_max_retries=1)
        chain = row.config.name

        async def lie_refused_twice_and_the_rest_indexed() -> bool:
            # Two activity attempts of two requests each: retried by the client and by Temporal.
            # A range is stored batch by batch: the blocks of 50-99 in batches before the lie's
            # (a worker's first batch of a chain is a 4-block probe) may be indexed already.
            ranges = await harness.ranges(row.id)
            return (
                bad_data_requests(harness, chain) >= 4
                and covered(ranges, 0, 49)
                and covered(ranges, 100, head)
                and not covered(ranges, LIE_BLOCK, LIE_BLOCK)
            )

        async with harness.worker():
            await harness.start(chain)
            await wait_until(lie_refused_twice_and_the_rest_indexed, 90, "the lie refused")
            stored = await harness.pool.fetchval(
                "SELECT (SELECT count(*) FROM blocks WHERE chain_id = $1 AND number = $2)"
                " + (SELECT count(*) FROM transactions WHERE chain_id = $1"
                " AND block_number = $2)",
                row.id,
                LIE_BLOCK,
            )
            assert stored == 0

            proxy.rewrite = None
            await wait_until(lambda: fully_indexed(harness, chain, head), 90, "the range retried")
    assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, head)
    assert await harness.ranges(row.id) == [(0, head)]
    values = await harness.pool.fetchval(
        "SELECT max(length(value::text)) FROM transactions WHERE chain_id = $1", row.id
    )
    assert values < 100
