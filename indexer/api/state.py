"""What every handler shares: the pool, a lazily connected Temporal client, the token, rates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web
from temporalio.client import Client

from indexer.progress import RateTracker

log = logging.getLogger("indexer.api")


@dataclass
class ApiState:
    pool: asyncpg.Pool
    temporal: Client
    token: str
    task_queue: str = "tindexer"
    rates: RateTracker = field(default_factory=RateTracker)
    log: logging.Logger = log


STATE: web.AppKey[ApiState] = web.AppKey("state", ApiState)


def state_of(request: web.Request) -> ApiState:
    return request.app[STATE]
