"""Status handlers: one chain, every chain (two queries for all), and a chain's gaps, paged."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp import web

from exporter.metrics import Metrics
from indexer.api.chains import chain_name
from indexer.api.errors import ApiError, not_found
from indexer.api.reads import read_connection
from indexer.api.state import ApiState, state_of
from indexer.api.validation import gaps_query
from indexer.config import ChainConfig
from indexer.progress import (
    ChainStatus,
    DatasetStatus,
    RateTracker,
    chain_status,
    chain_statuses,
    eta_seconds,
)
from indexer.public_url import public_url
from indexer.store.chains import ChainRow, get_chain, list_chains
from indexer.store.ranges import gaps_page


def _rounded_rate(rate: float | None) -> float | None:
    return round(max(rate, 0.0), 1) if rate is not None else None


def _rounded_eta(eta: float | None) -> float | None:
    return round(eta, 1) if eta is not None else None


def dataset_document(
    chain: ChainStatus, dataset: DatasetStatus, rates: RateTracker
) -> dict[str, Any]:
    """One enabled dataset's progress: its own backlog, how far behind the blocks, its ETA."""
    known = chain.head is not None
    rate = rates.observe(chain.chain, dataset.indexed_blocks, dataset.dataset) if known else None
    eta = eta_seconds(dataset.missing_blocks, rate) if known else None
    return {
        "dataset": dataset.dataset,
        "indexed_blocks": dataset.indexed_blocks,
        "missing_blocks_count": dataset.missing_blocks,
        "gap_ranges_count": dataset.gap_ranges,
        "last_indexed": dataset.last_indexed,
        "behind_blocks_count": dataset.behind_blocks,
        "is_caught_up": dataset.caught_up,
        "blocks_per_second": _rounded_rate(rate),
        "eta_seconds": _rounded_eta(eta),
    }


class ProviderSightings:
    """The provider gauges as this process's workers last set them, read once for every chain
    of a status page: a registry lookup per value scans every series, which with 100 chains
    took a quarter of `tindexer up`'s core (bench/chains.py under py-spy)."""

    def __init__(self, metrics: Metrics) -> None:
        families = {
            "up": metrics.provider_up,
            "head": metrics.provider_head,
            "lag": metrics.provider_head_lag,
            "chain_id": metrics.provider_chain_id,
            "unverified": metrics.provider_head_unverified,
            "expected": metrics.chain_id,
        }
        self._values = {
            key: {
                tuple(sample.labels.values()): sample.value
                for metric in family.collect()
                for sample in metric.samples
            }
            for key, family in families.items()
        }

    def value(self, key: str, *labels: str) -> float | None:
        return self._values[key].get(labels)


def provider_documents(config: ChainConfig, sightings: ProviderSightings) -> list[dict[str, Any]]:
    """Each provider by name and public URL, with its circuit, head and lag as a worker in this
    process last saw them (null where no worker of this process has used the chain; every
    worker's /metrics has them as tindexer_provider_*)."""

    def seen(key: str, provider: str) -> float | None:
        return sightings.value(key, config.name, provider)

    expected = sightings.value("expected", config.name)
    documents = []
    for provider in config.effective_providers():
        up = seen("up", provider.name)
        head = seen("head", provider.name)
        lag = seen("lag", provider.name)
        answered = seen("chain_id", provider.name)
        problem = None
        if answered is not None and expected is not None and answered != expected:
            problem = f"wrong chain id {int(answered)}, expected {int(expected)}"
        elif seen("unverified", provider.name) == 1:
            problem = "head claim not verified (no other provider witnesses it)"
        documents.append(
            {
                "name": provider.name,
                "url": public_url(provider.url),
                "healthy": None if up is None else up == 1 and problem is None,
                "head": None if head is None else int(head),
                "lag_blocks": None if lag is None or head is None else int(lag),
                "chain_id": None if answered is None else int(answered),
                "problem": problem,
            }
        )
    return documents


def status_document(
    status: ChainStatus, rates: RateTracker, providers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The status JSON: live sync and the backlog side by side, never one blended percentage;
    the chain's counts are of blocks stored with every enabled dataset, and `datasets` has each
    dataset's own."""
    rate = rates.observe(status.chain, status.indexed_blocks) if status.head is not None else None
    eta = eta_seconds(status.missing_blocks, rate) if status.head is not None else None
    gap = status.largest_gap
    return {
        "chain": status.chain,
        "head": status.head,
        "finalized_block": status.finalized,
        "last_indexed": status.last_indexed,
        "is_live_sync": status.is_live_sync,
        "indexed_blocks": status.indexed_blocks,
        "missing_blocks_count": status.missing_blocks,
        "gap_ranges_count": status.gap_ranges,
        "largest_gap_start": gap[0] if gap else None,
        "largest_gap_end": gap[1] if gap else None,
        "historical_progress": (
            round(status.historical_progress, 6) if status.head is not None else None
        ),
        "blocks_per_second": _rounded_rate(rate),
        "eta_seconds": _rounded_eta(eta),
        "datasets": [dataset_document(status, d, rates) for d in status.datasets],
        "providers": providers or [],
    }


async def all_statuses(state: ApiState) -> list[dict[str, Any]]:
    """Every chain's status (two queries for all of them: progress.chain_statuses)."""
    async with read_connection(state.pool, state.reads) as conn:
        rows = await list_chains(conn)
        statuses = await chain_statuses(conn, rows)
    state.rates.forget(
        {row.config.name for row in rows}, {row.config.name: row.config.datasets for row in rows}
    )
    sightings = ProviderSightings(state.metrics)
    return [
        status_document(status, state.rates, provider_documents(row.config, sightings))
        for row, status in zip(rows, statuses, strict=True)
    ]


async def chains_status(request: web.Request) -> web.Response:
    return web.json_response({"chains": await all_statuses(state_of(request))})


async def _chain(conn: asyncpg.Connection, request: web.Request) -> ChainRow:
    name = chain_name(request)
    row = await get_chain(conn, name)
    if row is None:
        raise not_found(name)
    return row


async def chain_status_handler(request: web.Request) -> web.Response:
    state = state_of(request)
    async with read_connection(state.pool, state.reads) as conn:
        row = await _chain(conn, request)
        status = await chain_status(conn, row)
    providers = provider_documents(row.config, ProviderSightings(state.metrics))
    return web.json_response(status_document(status, state.rates, providers))


async def chain_gaps(request: web.Request) -> web.Response:
    """Missing ranges between the chain's start_block and head, oldest first, `limit` a page."""
    state = state_of(request)
    limit, after = gaps_query(request.query)
    async with read_connection(state.pool, state.reads) as conn:
        row = await _chain(conn, request)
        if row.head is None:
            gaps: list[tuple[int, int]] = []
            more = False
        else:
            gaps, more = await gaps_page(
                conn, row.id, row.config.start_block, row.head, after, limit
            )
    return web.json_response(
        {
            "chain": row.config.name,
            "head": row.head,
            "gaps": [{"start": s, "end": e, "size": e - s + 1} for s, e in gaps],
            "next_after": gaps[-1][0] if more and gaps else None,
        }
    )


async def sample_rates(state: ApiState, interval: float) -> None:
    """Keep the throughput samples fresh even when nobody asks for a status."""
    while True:
        await asyncio.sleep(interval)
        try:
            await all_statuses(state)
        except (
            OSError,
            TimeoutError,
            ApiError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
        ) as exc:
            # Postgres away or busy: try again next time
            state.log.warning("rate sampling failed: %s", exc)
