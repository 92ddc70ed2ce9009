"""Several providers, one of them lying: on another chain, glitching its head, refusing calls,
or on a minority fork. Each case runs the real indexer (Temporal, PostgreSQL, a worker)
against simulated chains behind provider proxies, and checks the store against the right
chain exactly: one bad provider among good ones may slow a chain, never change or stop it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from indexer.api.status import ProviderSightings, provider_documents
from indexer.config import ProviderConfig
from tests.support.chaindata import expected_blocks
from tests.support.faults import caught_up, wait_covered
from tests.support.harness import Harness, fully_indexed
from tests.support.provider_proxy import ProviderProxy
from tests.support.simchain import sim_head, sim_post
from tests.support.waiting import wait_until

LIE = 2**63 - 2  # eth_blockNumber of a glitching provider
BLOCK_CALLS = frozenset(
    {"eth_getBlockByNumber", "eth_getBlockReceipts", "eth_getTransactionReceipt"}
)


def configs(*proxies: ProviderProxy, **weights: float) -> list[ProviderConfig]:
    return [
        ProviderConfig(name=p.name, url=p.url, weight=weights.get(p.name, 1.0)) for p in proxies
    ]


async def test_a_provider_on_another_longer_chain_is_kept_out_and_nothing_of_it_is_stored(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    right_url = sim_chain(backlog=600, txs_per_block=2)  # chain id 1337
    wrong_url = sim_chain(backlog=900, txs_per_block=2, chain_id=999, seed=7)
    head = await sim_head(right_url)
    right, wrong = ProviderProxy(right_url, name="right"), ProviderProxy(wrong_url, name="wrong")
    async with right.running(), wrong.running():
        row = await harness.add_chain(None, providers=configs(right, wrong))
        chain = row.config.name
        async with harness.worker():
            await harness.start(chain)
            await wait_until(lambda: fully_indexed(harness, chain, head), 120, "the backlog")
            await right.more_calls("eth_blockNumber", 3)  # scans go on; still only the right
            sightings = ProviderSightings(harness.metrics)
            documents = {d["name"]: d for d in provider_documents(row.config, sightings)}
        stored_head = (await harness.chain(chain)).head
        pinned = await harness.pool.fetchval(
            "SELECT evm_chain_id FROM chains WHERE id = $1", row.id
        )
    assert documents["wrong"]["problem"] == "wrong chain id 999, expected 1337"
    assert documents["wrong"]["healthy"] is False
    assert documents["right"]["problem"] is None and documents["right"]["chain_id"] == 1337
    assert harness.sample("tindexer_provider_chain_id_mismatch", chain=chain, provider="wrong")
    assert not harness.sample("tindexer_provider_chain_id_mismatch", chain=chain, provider="right")
    assert harness.sample("tindexer_provider_chain_id", chain=chain, provider="wrong") == 999
    assert pinned == 1337
    # Asked its chain id only: no head, block or receipt of it was ever requested.
    assert set(wrong.calls) == {"eth_chainId"}, wrong.calls
    assert stored_head == head
    assert await harness.stored_blocks(row.id) == await expected_blocks(right_url, 0, head)


async def test_a_glitching_head_of_2_63_is_never_adopted_and_a_later_reorg_is_repaired(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=400, txs_per_block=1, block_time=0.5)
    honest, liar = ProviderProxy(url, name="honest"), ProviderProxy(url, name="liar")
    async with honest.running(), liar.running():
        row = await harness.add_chain(
            None, providers=configs(honest, liar), head_poll_interval_seconds=0.2
        )
        chain = row.config.name
        async with harness.worker():
            await harness.start(chain)
            await caught_up(harness, row.id, url, timeout=120)
            lie_until = time.monotonic() + 10

            def glitch(call: dict[str, Any], answer: dict[str, Any]) -> None:
                if call.get("method") == "eth_blockNumber" and time.monotonic() < lie_until:
                    answer["result"] = hex(LIE)

            liar.rewrite = glitch
            highest_seen = 0
            while time.monotonic() < lie_until:  # the stored head never takes the lie
                highest_seen = max(highest_seen, (await harness.chain(chain)).head or 0)
                assert highest_seen <= await sim_head(url) + 1, highest_seen
                await honest.more_calls("eth_blockNumber", 1)
            liar.reset()
            head = await caught_up(harness, row.id, url)
            assert abs((await harness.chain(chain)).head - head) <= 1
            rejected = harness.sample(
                "tindexer_provider_head_rejected_total", chain=chain, provider="liar"
            )
            assert rejected >= 3, rejected  # scans every 0.2 s for 10 s

            async def liar_believed_again() -> bool:
                # Its first honest claim may come after the chain is caught up: wait for it.
                return not harness.sample(
                    "tindexer_provider_head_unverified", chain=chain, provider="liar"
                )

            await wait_until(liar_believed_again, 30, "the liar's honest claims adopted")
            # A reorg after the lie is repaired exactly.
            reorged_at = (await sim_post(url, "/_sim/reorg", {"depth": 3}))["head"]

            async def repaired() -> bool:
                return harness.sample("tindexer_reorgs_total", chain=chain) >= 1

            await wait_until(repaired, 60, "the reorg repaired")
            head = await caught_up(harness, row.id, url)
            assert head >= reorged_at
    assert await harness.stored_blocks(row.id, 0, head) == await expected_blocks(url, 0, head)


def refuse_block_calls(calls: list[dict[str, Any]]) -> web.Response | None:
    """-32602 (invalid params) for every block and receipt call; the rest is forwarded."""
    if not calls or any(call.get("method") not in BLOCK_CALLS for call in calls):
        return None
    error = {"code": -32602, "message": "invalid argument 0: block range too large"}
    body = [{"jsonrpc": "2.0", "id": call.get("id"), "error": error} for call in calls]
    return web.Response(body=json.dumps(body), content_type="application/json")


async def test_a_provider_refusing_every_block_call_costs_little_and_changes_nothing(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=6_000, txs_per_block=2)
    head = await sim_head(url)
    alone, healthy, refusing = (
        ProviderProxy(url, name="alone"),
        ProviderProxy(url, name="healthy"),
        ProviderProxy(url, name="refusing"),
    )
    refusing.answer = refuse_block_calls
    seconds, chains = {}, {}
    async with alone.running(), healthy.running(), refusing.running():
        for name, providers in (
            ("healthy alone", configs(alone)),
            ("beside a refusing one", configs(healthy, refusing)),
        ):
            row = await harness.add_chain(None, providers=providers, blocks_per_workflow=500)
            chain = chains[name] = row.config.name
            async with harness.worker():
                started = time.monotonic()
                await harness.start(chain)
                await wait_covered(harness, row.id, head, 180)
                seconds[name] = time.monotonic() - started
            assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, head)
            await harness.terminate_chain_workflows()
    print(f"6,000 blocks: {seconds}")
    assert sum(refusing.calls[m] for m in BLOCK_CALLS) > 0  # it was asked, and refused
    beside = chains["beside a refusing one"]
    assert (
        harness.sample("tindexer_provider_circuit_opened_total", chain=beside, provider="refusing")
        >= 1
    )
    assert seconds["beside a refusing one"] <= 1.5 * seconds["healthy alone"], seconds


async def test_a_provider_on_a_minority_fork_deletes_nothing_and_is_counted(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    canonical_url = sim_chain(backlog=300, txs_per_block=1)
    minority_url = sim_chain(backlog=300, txs_per_block=1)  # the same chain, until it forks
    head = await sim_head(canonical_url)
    minority = ProviderProxy(minority_url, name="minority")
    one, two = ProviderProxy(canonical_url, name="one"), ProviderProxy(canonical_url, name="two")
    async with minority.running(), one.running(), two.running():
        # Listed first and weighted 100: the reorg check reads the minority's hashes first.
        row = await harness.add_chain(
            None,
            providers=configs(minority, one, two, minority=100.0),
            head_poll_interval_seconds=0.2,
        )
        chain = row.config.name
        async with harness.worker():
            await harness.start(chain)
            await wait_until(lambda: fully_indexed(harness, chain, head), 120, "the backlog")
            versions = await harness.row_versions(row.id)
            await sim_post(minority_url, "/_sim/reorg", {"depth": 5})

            def disagreements() -> float:
                return harness.sample(
                    "tindexer_provider_fork_disagreements_total", chain=chain, provider="minority"
                )

            async def disagreed_or_deleted() -> bool:
                changed = await harness.row_versions(row.id) != versions
                return changed or disagreements() >= 3

            await wait_until(disagreed_or_deleted, 60, "the minority's fork counted three times")
            assert await harness.row_versions(row.id) == versions  # nothing deleted or rewritten
            assert disagreements() >= 3
    assert harness.sample("tindexer_reorgs_total", chain=chain) == 0
    for provider in ("one", "two"):
        assert not harness.sample(
            "tindexer_provider_fork_disagreements_total", chain=chain, provider=provider
        )
    assert await harness.stored_blocks(row.id) == await expected_blocks(canonical_url, 0, head)
