"""Timeouts and retry policies of every activity the workflows run, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Every activity heartbeats (activities/heartbeat.py, every 2 s) and has this timeout, so the
# work of a worker that died (SIGKILL, OOM, a lost host) is retried elsewhere within seconds,
# not after its start-to-close timeout (up to minutes).
HEARTBEAT_TIMEOUT = timedelta(seconds=10)

# Scanning and scheduling never give up: a chain or Temporal that is away for a while must not
# end HeadScan or a Scheduler. Retry forever, backing off to one attempt every 30 s.
PATIENT = RetryPolicy(maximum_interval=timedelta(seconds=30))

SCAN_TIMEOUT = timedelta(minutes=2)  # head, reorg window and coverage: seconds at most
START_RANGES_TIMEOUT = timedelta(minutes=10)  # a batch of starts under Temporal rate limits
START_SCHEDULER_TIMEOUT = timedelta(minutes=1)
SCHEDULER_TICK_TIMEOUT = timedelta(seconds=30)

# A range's start-to-close timeout is a backstop, not its pace: every step inside it is bounded
# on its own (each RPC request by its timeout and retries, each batch's store by its deadline,
# a wait for memory budget by the other batches' bounded steps), the heartbeat catches a dead
# worker within HEARTBEAT_TIMEOUT, and a retry resumes after the batches already committed. It
# allows a second per block: a mainnet block (~0.5 MB of answers with receipts) through a slow,
# shared provider. At 0.1 s per block, ranges of mainnet blocks sharing a worker timed out by
# the dozen (bench/results/mainnet.json before this: 16.7 % of attempts) and redid their work.
INDEX_BASE_TIMEOUT = timedelta(seconds=60)
INDEX_PER_BLOCK_TIMEOUT = timedelta(seconds=1)


def index_range_timeout(blocks: int) -> timedelta:
    """The start-to-close timeout grows with the range: a backstop for a stuck range."""
    return INDEX_BASE_TIMEOUT + INDEX_PER_BLOCK_TIMEOUT * blocks


def index_range_retry(max_attempts: int) -> RetryPolicy:
    """Retried with backoff up to `max_attempts` (a per-chain knob); an unknown chain is final."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=max_attempts,
        non_retryable_error_types=["UnknownChain"],
    )
