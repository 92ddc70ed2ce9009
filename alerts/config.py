"""Every threshold, window, selector and `for` duration of the alert rules, each with its reason.

The committed `alerts/rules.yml` is built from `CONFIG`. Tests that need an alert to fire within
seconds build their own rules with `dataclasses.replace(CONFIG, ...)`; the production values
below are the ones the promtool unit tests in `alerts/tests/` check.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AlertConfig:
    # Scopes every rule to the indexer's scrape job (the job name in deploy/prometheus.yml).
    # Several deployments in one Prometheus: build one rule file per job.
    job_selector: str = 'job="tindexer"'

    # Where `runbook_url` points; the alert name's section is appended as an anchor. Relative,
    # because where the docs are hosted is the user's choice: `tindexer alerts build
    # --runbook-base-url https://…/docs/runbooks.md` writes absolute links.
    runbook_base_url: str = "docs/runbooks.md"

    # --- Availability ---------------------------------------------------------------------
    # A restart or one lost scrape is seconds; five minutes without metrics means every other
    # alert is blind, so it pages.
    exporter_down_for: str = "5m"
    # The health check runs every 5 s; 2 minutes of failures is an outage, not a leader
    # election or a frontend restart (those take well under a minute).
    temporal_unreachable_for: str = "2m"
    # The health collector reconnects every few seconds; a minute of failures stops every
    # IndexRange store, and nothing heals it but a human.
    postgres_down_for: str = "1m"
    # A collector refreshes every 2–5 s. Two minutes without one success is dozens of failed
    # refreshes: its metrics are stale, and dashboards and other alerts read them.
    collector_stale_seconds: int = 120
    collector_failing_for: str = "5m"

    # A target that served tindexer_worker_info within this window is a worker (its own
    # series go stale the moment it stops answering, so the alert looks back). An hour covers
    # any outage worth paging on; a worker removed for good stops counting an hour later.
    worker_seen_window: str = "1h"
    # A worker host that stopped answering while ranges wait: its running ranges move to the
    # other hosts by themselves after the heartbeat timeout (10 s), but its share of the
    # capacity is gone until it is back. A restart takes seconds; 2 minutes is a host down.
    worker_host_down_for: str = "2m"

    # --- Progress -------------------------------------------------------------------------
    # HeadScan polls every few seconds and schedules whatever is missing; a backlog with no
    # block scheduled for 15 minutes is a stuck scheduler, not a slow one (a full
    # max_inflight_ranges frees slots within minutes when ranges complete).
    scheduling_stalled_window: str = "15m"
    scheduling_stalled_for: str = "5m"
    # Short outages of the provider or Temporal lose live sync for a minute or two and heal by
    # themselves; 15 minutes behind is an outage users see, so it pages. The lag target itself
    # is each chain's `live_sync_lag` (tindexer_chain_live_sync).
    live_sync_lost_for: str = "15m"
    # Below 10,000 blocks a backfill finishes in seconds to minutes at the measured 1.6–3k
    # blocks/s, so "not shrinking" is only meaningful above it; an hour's window smooths the
    # sawtooth of batch scheduling, and 30 more minutes rule out a single slow hour.
    backlog_min_blocks: int = 10_000
    backlog_window: str = "1h"
    backlog_not_shrinking_for: str = "30m"
    # Holes below the newest indexed block are normal during a backfill while they shrink; two
    # hours without shrinking means ranges keep failing or were never scheduled.
    gaps_window: str = "30m"
    gaps_for: str = "2h"
    # A dataset added to an indexed chain is filled in for every stored block, which on a long
    # chain takes hours, shrinking all the while; an hour in which a dataset behind the blocks
    # did not shrink means its ranges keep failing (a provider without receipts, or answering
    # receipts that do not match their blocks), and 30 more minutes rule out one slow hour.
    dataset_behind_window: str = "1h"
    dataset_behind_for: str = "30m"
    # Deeper than this is rare on any EVM chain with finality, and the repair (delete and
    # re-index) approaches max_reorg_depth (64 by default): a human should look at the provider.
    deep_reorg_blocks: int = 8
    deep_reorg_window: str = "1h"

    # --- What the provider answers ----------------------------------------------------------
    # Load-balanced providers answer from backends a block or two apart, so a head below the
    # chain's now and then is normal (counted, never acted on). Behind at every scan for 10
    # minutes, then 5 more, is a node stuck or resyncing: nothing new is indexed meanwhile, and
    # TindexerLiveSyncLost cannot see it, because the head it measures from stays at the highest
    # the provider answered. Fifteen minutes in all, as for live sync lost.
    provider_behind_window: str = "10m"
    provider_behind_for: str = "5m"
    # A scan or two on a stale fork heals by itself (the next answer agrees again); a minute of
    # refusals is a stopped chain that only a human resumes (max_reorg_depth, or the provider).
    fork_too_deep_for: str = "1m"
    # A final block never changes: a provider that says it did is wrong or the chain broke
    # finality. A scan or two from a backend on a stale fork heals by itself, as above.
    fork_below_finality_for: str = "1m"
    # A provider's circuit opens after 3 failed batches in a row and is probed every 5-30 s,
    # so a blip closes it again within a minute; out for 5 minutes is a provider down (the
    # others carry the chain meanwhile: a warning, not a page).
    provider_down_for: str = "5m"
    # One of several providers behind the best by more than this many blocks for 10 minutes
    # is a node stuck or resyncing (routing already keeps blocks above its head from it); 64
    # is the default reorg window: more than any reorg explains.
    provider_lagging_blocks: int = 64
    provider_lagging_for: str = "10m"
    # Every provider of a chain out at once stops the chain: page after 2 minutes.
    no_healthy_provider_for: str = "2m"

    # --- Providers that lie (several providers are witnesses, not oracles) ------------------
    # A provider on another chain (a testnet URL in a mainnet chain's list) is a configuration
    # error that never heals by itself; it is kept out from its first check, so nothing is at
    # risk and a minute only rules out a check racing a config change (PATCH of providers).
    provider_wrong_chain_id_for: str = "1m"
    # A head claim no other provider witnesses is rejected for a scan or two when a provider
    # runs ahead of the others by more than its max_head_lag (a fast node, a slow witness);
    # five minutes of rejected claims is a provider answering heads it cannot serve.
    provider_head_unverified_for: str = "5m"
    # A balancer flapping between backends, or a node on a minority fork, reports forks the
    # others do not confirm; one is a stale backend caught mid-answer, three in ten minutes is
    # a provider that keeps doing it (each costs a reorg check against every provider).
    fork_disagreements_window: str = "10m"
    fork_disagreements_count: int = 3

    # --- Rate limits and errors -----------------------------------------------------------
    # The SDK retries RESOURCE_EXHAUSTED by itself; a few per minute are harmless, more than
    # one every 10 s for 15 minutes means the namespace RPS limit throttles scheduling.
    rate_limited_window: str = "5m"
    temporal_rate_limited_per_second: float = 0.1
    temporal_rate_limited_for: str = "15m"
    # The adaptive limiter probes up to the provider's limit, so a few 429s per hundred
    # requests are by design; 5 % sustained for 15 minutes means the plan's quota is too small.
    rpc_rate_limited_ratio: float = 0.05
    rpc_rate_limited_for: str = "15m"
    # Any start failure is retried, but it means Temporal refused work: always worth a ticket.
    # The window only decides how long the alert stays up after the last failure.
    workflow_start_failures_window: str = "10m"
    # 0.1 % of attempts timing out is the bar; 15-minute windows keep one slow batch
    # from firing it.
    activity_timeout_ratio: float = 0.001
    activity_timeout_window: str = "15m"
    activity_timeout_for: str = "15m"

    # --- PostgreSQL -----------------------------------------------------------------------
    # Above 80 % of max_connections a burst of new workers or a migration fails to connect.
    pg_connection_utilization: float = 0.8
    pg_connections_for: str = "10m"
    # The old plan's bar: the indexer's own queries stay below 50 ms at p95.
    pg_query_p95_seconds: float = 0.05
    pg_query_window: str = "10m"
    pg_query_latency_for: str = "15m"

    # --- The Temporal server's own metrics (alerts/groups/temporal_server.py) ---------------
    # Scopes these rules to the Temporal server's scrape job (deploy/prometheus.yml).
    temporal_job_selector: str = 'job="temporal"'
    # A refused start is retried by the SDK, so no work is lost, but every refusal means the
    # namespace's budget (frontend.namespaceRPS) is below what the indexer asks: any
    # refusal over a minute is worth a ticket that names the cause and scope. The window only
    # decides how quickly the alert resolves after the last refusal.
    temporal_starts_rejected_window: str = "2m"
    temporal_starts_rejected_for: str = "1m"
    # Every workflow state change waits for one persistence call, so persistence p99 adds to
    # every task. A healthy database answers in milliseconds (not measured here at p99; the
    # dev server's SQLite histograms sat in the <= 50 ms buckets when looked at); above 1 s at
    # p99 for 10 minutes slows every range by as much and is the database's problem, not a
    # vacuum or a failover blip.
    temporal_persistence_p99_seconds: float = 1.0
    temporal_persistence_window: str = "5m"
    temporal_persistence_for: str = "10m"
    # A workflow task normally waits ~100 ms for a worker (measured: most of a one-activity
    # workflow's latency); 5 s at p99 for 5 minutes means the workers cannot keep up (too
    # few, or their slots full) or nobody polls: the bar.
    temporal_schedule_to_start_p99_seconds: float = 5.0
    temporal_schedule_to_start_window: str = "5m"
    temporal_schedule_to_start_for: str = "5m"
    # A task queue of the indexer's that no worker has polled: its work waits forever. The
    # pollers gauge comes from DescribeTaskQueue (the server exports no poller count). A
    # rolling deploy leaves a queue without pollers for seconds; 5 minutes is an outage.
    task_queue_no_pollers_for: str = "5m"
    # service_errors counts only failures the server blames on itself (not rejections, not a
    # caller's "already started"), which should be near zero; 1 % of a service's requests for
    # 15 minutes is a sick service or its database, not one bad minute.
    temporal_service_error_ratio: float = 0.01
    temporal_service_error_window: str = "5m"
    temporal_service_error_for: str = "15m"

    # --- Autoscaling ----------------------------------------------------------------------
    # At max_replicas with a growing backlog for 30 minutes, capacity (or the bottleneck
    # behind it) is the problem; shorter would fire during every scale-up.
    replicas_window: str = "30m"
    replicas_pinned_for: str = "30m"
    # A worker held at its memory budget (indexer/worker_budget.py): on average at least one
    # batch waiting for room at every moment (summed wait seconds per second over the window)
    # while its bytes in flight fill most of the budget. Short bursts are the budget doing its
    # job; half an hour of it means throughput is bounded by the budget: raise it (within the
    # memory limit) or add workers.
    memory_budget_window: str = "10m"
    memory_budget_waiting: float = 1.0
    memory_budget_fill: float = 0.8
    memory_budget_for: str = "30m"

    # --- SLOs -----------------------------------------------------------------------------
    # 99 % of the time live: 7.2 hours a month of budget for provider outages and upgrades.
    live_sync_target: float = 0.99
    # 99 % of JSON-RPC requests answered: the limiter's probing 429s fit well inside it.
    rpc_success_target: float = 0.99
    # The error budget's period, as in the SRE workbook.
    slo_period: str = "30d"
    # The 30-day ratio reads a month of samples per chain: once every 5 minutes is plenty for
    # a budget panel. None = Prometheus' global evaluation_interval.
    slo_budget_interval: str | None = "5m"


# (burn factor, long window, short window, for, severity): the SRE workbook's multi-window,
# multi-burn-rate table. 14.4× burns 2 % of a 30-day budget in an hour and 6× burns 5 % in six
# hours: page. 3× and 1× spend 10 % in a day and in three days: ticket.
BURN_RATES: tuple[tuple[float, str, str, str, str], ...] = (
    (14.4, "1h", "5m", "2m", "critical"),
    (6.0, "6h", "30m", "15m", "critical"),
    (3.0, "1d", "2h", "1h", "warning"),
    (1.0, "3d", "6h", "3h", "warning"),
)
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

CONFIG = AlertConfig()
