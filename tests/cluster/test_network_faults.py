"""Network faults between worker hosts and core, mid-backfill of the 20,000-block chain: a
worker host cut off from Temporal, and a slow, lossy path to PostgreSQL and Temporal (a proxy of
the tests' own: this kernel has no netem and no iptables). Each ends with the exact check of
PostgreSQL against the chain: nothing lost, nothing stored twice.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from indexer.workflows.policies import HEARTBEAT_TIMEOUT, index_range_retry
from tests.support.cluster_backfill import HEAD, assert_exact, backfill_on, wait_holding
from tests.support.cluster_ranges import finished_by, identity_of, ranges_held_by, wait_moved
from tests.support.cluster_site import BACKLOG, FIGURES, Site
from tests.support.faults import indexed_blocks, wait_covered
from tests.support.lossy_link import start_lossy_link
from tests.support.workers import Samples, sample_sum

pytestmark = pytest.mark.cluster

CUT_SECONDS = 30.0
# A range on a host that cannot reach Temporal stops heartbeating: it is timed out after the
# heartbeat timeout and retried after the first retry interval (+ dispatch on 2 loaded cores).
FIRST_RETRY = index_range_retry(1).initial_interval.total_seconds()
MOVE_ALLOWANCE = HEARTBEAT_TIMEOUT.total_seconds() + FIRST_RETRY + 5
# The path: 100 ms ± 20 ms each way, and a share of connections reset mid-stream.
LINK_OPTIONS = ["--delay", "0.1", "--jitter", "0.02", "--cut-share", "0.3", "--cut-within", "20"]
LINK_BACKFILL_TIMEOUT = 900.0
# Across the slow link timeouts must stay the exception, not the rule ("not by the thousand").
MAX_TIMEOUT_RATE = 0.1
OUTCOMES = ("ok", "error", "timeout", "cancelled")
# What the SDK logs when Temporal refuses a completion: the attempt was timed out meanwhile.
REFUSED_COMPLETION = "Activity not found on completion"


def _attempts(samples: list[Samples]) -> dict[str, float]:
    """IndexRange attempts by outcome, summed over the workers' /metrics."""
    return {
        outcome: sum(
            sample_sum(
                s,
                "tindexer_activity_duration_seconds_count",
                activity="index_range",
                outcome=outcome,
            )
            for s in samples
        )
        for outcome in OUTCOMES
    }


async def test_worker_host_cut_off_from_temporal_for_30s(site: Site) -> None:
    network = site.network
    chain_id, chain, started = await backfill_on(site, workers=3)
    victim_host, victim = started[0]
    held: list[str] = []
    while not held:  # each round waits (boundedly) for the victim to hold ranges again
        await wait_holding(site, chain, chain_id, victim.pid)
        at_cut = await indexed_blocks(site.harness.pool, chain_id)
        log_at_cut = victim.log_path.stat().st_size  # the module's log, shared by its tests
        with network.cluster.cut_off(victim_host, network.core.temporal_host):
            cut_began = time.monotonic()
            # The ranges the cut caught, read with the route in place: their completions cannot
            # reach Temporal. Ranges of a few hundred ms may all finish between the look before
            # the cut and the cut itself; then the victim is cut off again once it holds more.
            held = await ranges_held_by(site.harness.client, chain, victim.pid)
            if not held:
                continue
            moved_at = await wait_moved(
                site.harness.client, chain, held, victim.pid, MOVE_ALLOWANCE + 30
            )
            await asyncio.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_began)))  # fault
            during = await indexed_blocks(site.harness.pool, chain_id)
    cut_ended = time.monotonic()
    done = await wait_covered(site.harness, chain_id, HEAD, 120)
    compared = await assert_exact(site, chain_id)
    outcomes = [await finished_by(site.harness.client, wid) for wid in held]
    on_victim = sum(who.startswith(identity_of(victim.pid)) for _, who in outcomes)
    attempts = _attempts([await victim.scrape()])  # the cut-off host answers again
    with victim.log_path.open("rb") as log:
        log.seek(log_at_cut)
        since_cut = log.read().decode(errors="replace")
    refused_completions = since_cut.count(REFUSED_COMPLETION)
    move_seconds = moved_at - cut_began
    FIGURES.append(
        f"worker host {victim_host.address} cut off from Temporal (blackhole route to"
        f" {network.core.temporal_host}, PostgreSQL still reachable) for {CUT_SECONDS:.0f} s"
        f" at {at_cut} of {BACKLOG} blocks while holding {len(held)} ranges: they moved to the"
        f" other hosts in {move_seconds:.1f} s (heartbeat timeout"
        f" {HEARTBEAT_TIMEOUT.total_seconds():.0f} s); {during - at_cut} blocks indexed during"
        f" the cut, all {BACKLOG} {done - cut_ended:.1f} s after it; of its ranges {on_victim}"
        f" completed on it, {len(held) - on_victim} elsewhere, in"
        f" {sorted(a for a, _ in outcomes)} attempts; its IndexRange attempts by outcome"
        f" {attempts}, {refused_completions} completions refused by Temporal when it came back"
        f" (stale attempts; their rows equal the retries'); exact: {compared}"
    )
    assert move_seconds <= MOVE_ALLOWANCE, f"ranges moved after {move_seconds:.1f} s"
    # Its attempts were timed out and retried (a completion already on its way as the route
    # went in may still have counted).
    assert any(attempt >= 2 for attempt, _ in outcomes), outcomes


async def test_slow_lossy_link_to_postgres_and_temporal(site: Site) -> None:
    network = site.network
    link = start_lossy_link(network.cluster, network.core, LINK_OPTIONS)
    site.hosts.append(link.host)
    began = time.monotonic()
    chain_id, _, started = await backfill_on(
        site,
        workers=3,
        database_url=link.database_url(site.database_url),
        temporal_address=link.temporal_address,
    )
    link.arm()  # the workers are up: from now on connections are cut too
    compared = await assert_exact(site, chain_id, LINK_BACKFILL_TIMEOUT)
    elapsed = time.monotonic() - began
    attempts = _attempts([await worker.scrape() for _, worker in started])
    counts = link.counts()
    total = sum(attempts.values())
    rate = attempts["timeout"] / total if total else 0.0
    FIGURES.append(
        f"3 worker hosts behind a link of 100 ms ± 20 ms each way to PostgreSQL and Temporal,"
        f" {counts['cut']} of {counts['connected']} connections reset mid-stream: {BACKLOG}"
        f" blocks in {elapsed:.0f} s ({BACKLOG / elapsed:.0f} blocks/s); IndexRange attempts"
        f" {attempts}: activity timeout rate {rate:.1%}; exact: {compared}"
    )
    assert counts["cut"] > 0, "the link cut no connection: the case tested nothing"
    assert rate <= MAX_TIMEOUT_RATE, f"timeout rate {rate:.1%} over {MAX_TIMEOUT_RATE:.0%}"
