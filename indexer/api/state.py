"""What every handler shares: the pool, a lazily connected Temporal client, the token, rates."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web
from temporalio.client import Client

from exporter.metrics import Metrics, default_metrics
from indexer.api.reads import ReadLimits
from indexer.config import Settings
from indexer.doctor.report import default_metrics_urls
from indexer.doctor.sampler import DoctorSampler
from indexer.progress import RateTracker

log = logging.getLogger("indexer.api")

PURGE_BATCH_BLOCKS = 500  # per transaction: at ~300 transactions a block, ~150k rows


@dataclass
class ApiState:
    pool: asyncpg.Pool
    temporal: Client
    token: str
    task_queue: str = "tindexer"
    rates: RateTracker = field(default_factory=RateTracker)
    log: logging.Logger = log
    reads: ReadLimits = field(default_factory=ReadLimits)
    # Host names the API answers to; None: localhost names (serving_api adds its bind address).
    allowed_hosts: frozenset[str] | None = None
    allow_link_local_rpc: bool = False
    purge_batch_blocks: int = PURGE_BATCH_BLOCKS
    purge_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    # What a worker in this process has seen of each provider (status shows it).
    metrics: Metrics = field(default_factory=default_metrics)
    # What GET /doctor reads: the indexer's /metrics endpoints and the Temporal server's.
    doctor: DoctorSampler = field(
        default_factory=lambda: DoctorSampler(default_metrics_urls(Settings()), None)
    )


STATE: web.AppKey[ApiState] = web.AppKey("state", ApiState)


def state_of(request: web.Request) -> ApiState:
    return request.app[STATE]
