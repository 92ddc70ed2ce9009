"""A chain's progress: status from the indexed-range sets, throughput samples, and the ETA.

Live sync and the backlog are reported side by side, never blended into one percentage.
`indexed_ranges` holds the blocks stored with every enabled dataset; each dataset's own
interval set says how far that dataset is, so "blocks done" is never mistaken for "logs done".
Nothing in PostgreSQL says when a block was indexed, so throughput comes from samples of the
indexed-block count over a sliding window, taken each time a status is computed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from indexer.datasets import Dataset
from indexer.store.chains import ChainRow
from indexer.store.ranges import Coverage, coverages, dataset_coverages, empty_coverage

RATE_WINDOW_SECONDS = 60.0  # long enough to smooth batchy commits, short enough to follow changes
MIN_SPAN_SECONDS = 1.0  # a rate from samples closer than this is mostly noise


class RateTracker:
    """Blocks per second per chain (and per dataset of a chain); None until two samples at
    least a second apart exist."""

    def __init__(
        self,
        window_seconds: float = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window_seconds
        self.clock = clock
        self._samples: dict[tuple[str, str | None], deque[tuple[float, int]]] = {}

    def observe(self, chain: str, indexed_blocks: int, dataset: str | None = None) -> float | None:
        """Record the indexed count of the chain (or of one of its datasets) now; return its
        rate over the window."""
        now = self.clock()
        samples = self._samples.setdefault((chain, dataset), deque())
        if samples and indexed_blocks < samples[-1][1]:
            samples.clear()  # a reorg or a deleted and re-created chain: start over
        samples.append((now, indexed_blocks))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        if t1 - t0 < MIN_SPAN_SECONDS:
            return None
        return (n1 - n0) / (t1 - t0)

    def forget(self, chains: set[str], datasets: Mapping[str, Iterable[str]] | None = None) -> None:
        """Drop the samples of chains not in `chains` and, if given, of datasets a chain no
        longer has (`datasets`: chain -> its enabled datasets)."""
        for key in list(self._samples):
            chain, dataset = key
            gone = chain not in chains or (
                dataset is not None
                and datasets is not None
                and dataset not in datasets.get(chain, ())
            )
            if gone:
                del self._samples[key]


def eta_seconds(missing_blocks: int, rate: float | None) -> float | None:
    """Seconds until nothing is missing at `rate` blocks/s: 0 when done, None when unknown."""
    if missing_blocks == 0:
        return 0.0
    if rate is None or rate <= 0:
        return None
    return missing_blocks / rate


@dataclass(frozen=True)
class DatasetStatus:
    """One enabled dataset's progress from its own interval set, beside the blocks'."""

    dataset: str
    indexed_blocks: int
    missing_blocks: int
    gap_ranges: int
    last_indexed: int | None
    # Blocks stored without this dataset's rows: a dataset added to an indexed chain starts
    # with every indexed block behind, and its backfill brings this to 0.
    behind_blocks: int

    @property
    def caught_up(self) -> bool:
        """Every stored block has this dataset's rows too."""
        return self.behind_blocks == 0


def dataset_statuses(covered: Mapping[Dataset, Coverage]) -> tuple[DatasetStatus, ...]:
    """Each dataset's status from its coverage, in the given order; `covered` has "blocks".

    Every store writes blocks, so a dataset's indexed blocks are a subset of the blocks':
    how far it is behind is the difference of the two counts.
    """
    blocks = covered["blocks"].indexed_blocks
    return tuple(
        DatasetStatus(
            dataset=dataset,
            indexed_blocks=coverage.indexed_blocks,
            missing_blocks=coverage.missing_blocks,
            gap_ranges=len(coverage.gaps),
            last_indexed=coverage.last_indexed,
            behind_blocks=max(0, blocks - coverage.indexed_blocks),
        )
        for dataset, coverage in covered.items()
    )


@dataclass(frozen=True)
class ChainStatus:
    """A chain's progress. Its block counts come from `indexed_ranges`: blocks stored with
    every enabled dataset; `datasets` has each enabled dataset's own progress."""

    chain: str
    head: int | None
    last_indexed: int | None
    indexed_blocks: int
    missing_blocks: int
    gap_ranges: int
    largest_gap: tuple[int, int] | None
    is_live_sync: bool
    datasets: tuple[DatasetStatus, ...] = ()
    finalized: int | None = None  # the final block at the last reorg check (finality knob)

    @property
    def datasets_behind(self) -> tuple[DatasetStatus, ...]:
        """The enabled datasets some stored blocks still lack."""
        return tuple(d for d in self.datasets if not d.caught_up)

    @property
    def backfilled(self) -> bool:
        """Live, and nothing missing below the newest indexed block: the backfill is done."""
        if not self.is_live_sync or self.head is None or self.last_indexed is None:
            return False
        return self.missing_blocks == self.head - self.last_indexed

    @property
    def historical_progress(self) -> float:
        """Indexed blocks over blocks that exist (first block to head)."""
        total = self.indexed_blocks + self.missing_blocks
        return self.indexed_blocks / total if total else 1.0


def _nothing_yet(dataset: str) -> DatasetStatus:
    return DatasetStatus(dataset, 0, 0, 0, None, 0)


async def chain_statuses(
    conn: asyncpg.Pool | asyncpg.Connection, rows: Sequence[ChainRow]
) -> list[ChainStatus]:
    """Each chain's status, in the order of `rows`, from two queries whatever their number: a
    query per chain and dataset made 100 chains cost `tindexer up` 500 queries a refresh.

    indexed_ranges is read first, then every dataset's ranges in one statement (one snapshot):
    a range committed between the two reads shows only in the datasets, so no set looks ahead
    of one that contains it (indexed_ranges is within every dataset's).
    """
    spans = {row.id: (row.config.start_block, row.head) for row in rows if row.head is not None}
    indexed = await coverages(conn, spans) if spans else {}
    by_dataset = await dataset_coverages(conn, spans) if spans else {}
    return [_status(row, indexed.get(row.id), by_dataset) for row in rows]


async def chain_status(conn: asyncpg.Pool | asyncpg.Connection, row: ChainRow) -> ChainStatus:
    """One chain's status (chain_statuses)."""
    return (await chain_statuses(conn, [row]))[0]


def _status(
    row: ChainRow, covered: Coverage | None, by_dataset: Mapping[tuple[int, str], Coverage]
) -> ChainStatus:
    """Live sync means the newest indexed block is within `live_sync_lag` of the head."""
    config = row.config
    if row.head is None or covered is None:
        nothing = tuple(_nothing_yet(dataset) for dataset in config.datasets)
        return ChainStatus(config.name, None, None, 0, 0, 0, None, False, nothing)
    datasets = dataset_statuses(
        {
            dataset: by_dataset.get((row.id, dataset))
            or empty_coverage(config.start_block, row.head)
            for dataset in config.datasets  # canonical order: blocks first
        }
    )
    live = (
        covered.last_indexed is not None and row.head - covered.last_indexed <= config.live_sync_lag
    )
    return ChainStatus(
        chain=config.name,
        head=row.head,
        last_indexed=covered.last_indexed,
        indexed_blocks=covered.indexed_blocks,
        missing_blocks=covered.missing_blocks,
        gap_ranges=len(covered.gaps),
        largest_gap=covered.largest_gap,
        is_live_sync=live,
        datasets=datasets,
        finalized=row.finalized,
    )
