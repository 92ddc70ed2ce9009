"""Hosts killed and cut off mid-backfill, across real network boundaries (network namespaces).

Each case backfills the 20,000-block simulated chain (receipts and logs) with worker hosts,
injects its fault while ranges are in flight, lets the system recover by itself, and then
checks PostgreSQL against the chain row by row: nothing lost, nothing stored twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from indexer.api.chains import TEMPORAL_TIMEOUT_SECONDS
from indexer.api.health import READY_TIMEOUT_SECONDS
from indexer.store.ranges import RANGE_LOCK_CLASS
from indexer.workflows.policies import HEARTBEAT_TIMEOUT, index_range_retry
from tests.support.cluster_backfill import HEAD, assert_exact, backfill_on, wait_holding
from tests.support.cluster_hosts import start_api
from tests.support.cluster_ranges import finished_by, identity_of, wait_moved
from tests.support.cluster_site import BACKLOG, FIGURES, Site
from tests.support.faults import indexed_blocks, wait_covered, wait_indexed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.cluster

Answer = tuple[int, Any, float]  # HTTP status, JSON body, seconds to answer

# A dead host's range is retried once its heartbeat lapses, after the first retry interval.
FIRST_RETRY = index_range_retry(1).initial_interval.total_seconds()
MOVE_ALLOWANCE = HEARTBEAT_TIMEOUT.total_seconds() + FIRST_RETRY + 5  # + dispatch on 2 cores
CUT_SECONDS = 30.0
# The server ends a silent client's sessions within ~11 s (indexer/store/db.py
# SILENT_CLIENT_SETTINGS); the other hosts then index on for the rest of the cut. Stalled
# behind the cut-off host's range lock they stored 0-398 blocks in the 30 s.
INDEXED_DURING_CUT = 1_000
TOKEN = "cluster-test-token"
# Sessions waiting for a chain's range lock (an advisory lock), and the hosts holding it.
RANGE_LOCK = f"""
SELECT count(*) FILTER (WHERE NOT l.granted)                        AS waiting,
       array_agg(DISTINCT host(a.client_addr)) FILTER (WHERE l.granted) AS holders
  FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'advisory' AND l.classid = {RANGE_LOCK_CLASS}
"""
# The sessions a host's pools still have on the server, and what each is doing. Those in a
# transaction may hold locks (the chain's range lock) that other hosts wait for. (The /metrics
# health collector's own connection holds none, and is left to the kernel's defaults.)
SESSIONS_FROM = """
SELECT state, wait_event_type, wait_event, now() - state_change AS for, left(query, 60) AS query,
       xact_start IS NOT NULL AS in_transaction
  FROM pg_stat_activity
 WHERE host(client_addr) = $1 AND application_name <> 'tindexer-health'
"""


async def test_worker_host_killed_whole_its_ranges_move(site: Site) -> None:
    chain_id, chain, started = await backfill_on(site, workers=3)
    victim_host, victim = started[0]
    held = await wait_holding(site, chain, chain_id, victim.pid)
    at_kill = await indexed_blocks(site.harness.pool, chain_id)
    killed = site.network.cluster.kill_host(victim_host)
    killed_at = time.monotonic()
    assert victim.pid in killed
    moved_at = await wait_moved(site.harness.client, chain, held, victim.pid, MOVE_ALLOWANCE + 30)
    move_seconds = moved_at - killed_at
    compared = await assert_exact(site, chain_id)
    FIGURES.append(
        f"worker host killed (SIGKILL, {len(killed)} processes) at {at_kill} of {BACKLOG} blocks:"
        f" its {len(held)} ranges moved to the other hosts in {move_seconds:.1f} s"
        f" (heartbeat timeout {HEARTBEAT_TIMEOUT.total_seconds():.0f} s); exact: {compared}"
    )
    assert move_seconds <= MOVE_ALLOWANCE, f"ranges moved after {move_seconds:.1f} s"


async def _timed_get(session: aiohttp.ClientSession, url: str) -> Answer:
    began = time.monotonic()
    async with session.get(url) as response:
        body = await response.json()
        return response.status, body, time.monotonic() - began


async def _timed_post(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
) -> Answer:
    began = time.monotonic()
    async with session.post(url, json=body) as response:
        answer = await response.json()
        return response.status, answer, time.monotonic() - began


async def test_api_host_cut_off_from_temporal_answers_503(site: Site) -> None:
    network = site.network
    _, api = await start_api(
        network.cluster,
        site.database_url,
        network.core.temporal_address,
        TOKEN,
        site.harness.task_queue,
    )
    api_host = network.cluster.hosts["api"]
    chain_id, chain, _ = await backfill_on(site, workers=2)
    await wait_indexed(site.harness, chain_id, BACKLOG // 5, 60, "a fifth of the chain")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=TEMPORAL_TIMEOUT_SECONDS * 3 + 30)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        status, body, _ = await _timed_get(session, f"{api}/readyz")
        assert (status, body["temporal"]) == (200, "ok"), body
        with network.cluster.cut_off(api_host, network.core.temporal_host):
            at_cut = await indexed_blocks(site.harness.pool, chain_id)
            ready, backfill, status_read, gaps = await asyncio.gather(
                _timed_get(session, f"{api}/readyz"),
                _timed_post(session, f"{api}/chains/{chain}/backfill", {"from": 0, "to": HEAD}),
                _timed_get(session, f"{api}/chains/{chain}/status"),
                _timed_get(session, f"{api}/chains/{chain}/gaps"),
            )
        cut_ended = time.monotonic()
        # Reads that need only PostgreSQL answer as before, and promptly.
        assert status_read[0] == 200, status_read
        assert status_read[1]["chain"] == chain, status_read
        assert gaps[0] == 200, gaps
        # Reads that need Temporal say so, within their timeouts, instead of hanging.
        assert ready[:2] == (
            503,
            {"status": "not ready", "postgres": "ok", "temporal": "unreachable"},
        )
        assert ready[2] < READY_TIMEOUT_SECONDS + 1, ready
        assert backfill[:2] == (503, {"error": "Temporal is unavailable", "field": None}), backfill
        assert backfill[2] < TEMPORAL_TIMEOUT_SECONDS * 3 + 5, backfill

        async def ready_again() -> bool:
            status, _, _ = await _timed_get(session, f"{api}/readyz")
            return status == 200

        back_at = await wait_until(ready_again, 120, "the API to reach Temporal again", 0.5)
    compared = await assert_exact(site, chain_id)
    FIGURES.append(
        f"API host cut off from Temporal at {at_cut} of {BACKLOG} blocks: GET /readyz 503 in"
        f" {ready[2]:.2f} s, POST backfill 503 in {backfill[2]:.2f} s; PostgreSQL reads 200:"
        f" status in {status_read[2]:.2f} s, gaps in {gaps[2]:.2f} s; ready again"
        f" {back_at - cut_ended:.1f} s after the route was restored; exact: {compared}"
    )


async def test_worker_host_cut_off_from_postgres_for_30s(site: Site) -> None:
    network = site.network
    chain_id, chain, started = await backfill_on(site, workers=3)
    victim_host, victim = started[0]
    held = await wait_holding(site, chain, chain_id, victim.pid)
    at_cut = await indexed_blocks(site.harness.pool, chain_id)
    waiting, holders = 0, set[str]()  # during the cut: most sessions waiting at once, who held it
    pool = site.harness.pool
    with network.cluster.cut_off(victim_host, network.core.postgres_address):
        cut_began = time.monotonic()
        sessions_at_cut = len(await pool.fetch(SESSIONS_FROM, victim_host.address))
        gone_after: float | None = None  # seconds into the cut when the server had ended them
        while time.monotonic() - cut_began < CUT_SECONDS:  # the fault's length, a fixed time
            if gone_after is None and not await pool.fetch(SESSIONS_FROM, victim_host.address):
                gone_after = time.monotonic() - cut_began
            lock = await pool.fetchrow(RANGE_LOCK)
            if lock["waiting"]:
                waiting = max(waiting, lock["waiting"])
                holders.update(lock["holders"] or ())
            await asyncio.sleep(1)
        during = await indexed_blocks(pool, chain_id)
        left = [dict(r) for r in await pool.fetch(SESSIONS_FROM, victim_host.address)]
        in_transaction = [session for session in left if session["in_transaction"]]
    cut_ended = time.monotonic()
    done = await wait_covered(site.harness, chain_id, HEAD, 120)
    compared = await assert_exact(site, chain_id)
    samples = await victim.scrape()  # the cut-off host is alive and answering again
    outcomes = [await finished_by(site.harness.client, wid) for wid in held]
    resumed = sum(who.startswith(identity_of(victim.pid)) for _, who in outcomes)
    FIGURES.append(
        f"worker host {victim_host.address} cut off from PostgreSQL (blackhole route to"
        f" {network.core.postgres_address},"
        f" Temporal still reachable) for {CUT_SECONDS:.0f} s at {at_cut} of {BACKLOG} blocks"
        f" while holding {len(held)} ranges: {during - at_cut} blocks indexed during the cut"
        f" (up to {waiting} sessions waiting for the chain's range lock, held from"
        f" {sorted(holders)}); its {sessions_at_cut} sessions on the server at the cut,"
        f" {len(left)} at its end ({len(in_transaction)} in a transaction), all gone"
        f" {'never' if gone_after is None else f'{gone_after:.0f} s into it'}; all {BACKLOG}"
        f" {done - cut_ended:.1f} s after it; of its ranges {resumed} finished on it,"
        f" {len(held) - resumed} elsewhere, in {sorted(a for a, _ in outcomes)} attempts;"
        f" exact: {compared}"
    )
    assert samples, "the cut-off worker no longer serves /metrics"
    # The server ended the silent host's sessions, so its locks did not stall the others.
    assert not left, f"sessions of the cut-off host outlived the cut: {left}"
    assert during - at_cut >= INDEXED_DURING_CUT, f"{during - at_cut} blocks during the cut"
