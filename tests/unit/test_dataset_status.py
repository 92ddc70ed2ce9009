"""Each dataset's progress, rate and ETA, and the rows a store adds per dataset: the pure parts."""

from __future__ import annotations

import pytest
import typer
from prometheus_client import CollectorRegistry

from exporter.metrics import DATASETS as EXPORTED_DATASETS
from exporter.metrics import Metrics
from indexer.activities.dataset_rows import new_rows, stored_rows
from indexer.api.status import status_document
from indexer.chain.model import Block, Log, Receipt, Transaction
from indexer.cli import _rpc_url_chain
from indexer.datasets import DATASETS
from indexer.observability import ProgressCollector
from indexer.progress import ChainStatus, DatasetStatus, RateTracker, dataset_statuses
from indexer.progress_view import dataset_bars, live_line
from indexer.store.ranges import Coverage


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def covered(indexed: int, gaps: list[tuple[int, int]], last: int | None) -> Coverage:
    return Coverage(first=0, head=999, indexed_blocks=indexed, last_indexed=last, gaps=gaps)


def test_the_exporter_knows_every_dataset() -> None:
    assert EXPORTED_DATASETS == DATASETS


def test_a_dataset_is_behind_by_the_blocks_stored_without_it() -> None:
    statuses = dataset_statuses(
        {
            "blocks": covered(1_000, [], 999),
            "transactions": covered(1_000, [], 999),
            "logs": covered(300, [(0, 699)], 999),
        }
    )
    assert statuses == (
        DatasetStatus("blocks", 1_000, 0, 0, 999, 0),
        DatasetStatus("transactions", 1_000, 0, 0, 999, 0),
        DatasetStatus("logs", 300, 700, 1, 999, 700),
    )
    assert [s.caught_up for s in statuses] == [True, True, False]
    chain = ChainStatus("c", 999, 999, 300, 700, 1, (0, 699), True, statuses)
    assert [d.dataset for d in chain.datasets_behind] == ["logs"]


def test_a_dataset_with_the_blocks_own_backlog_is_caught_up() -> None:
    """Blocks still being backfilled: a dataset stored with every one of them is not behind."""
    statuses = dataset_statuses(
        {"blocks": covered(400, [(400, 999)], 399), "logs": covered(400, [(400, 999)], 399)}
    )
    assert [(s.missing_blocks, s.behind_blocks, s.caught_up) for s in statuses] == [
        (600, 0, True),
        (600, 0, True),
    ]


def test_rates_are_kept_per_dataset_and_forgotten_with_it() -> None:
    clock = Clock()
    rates = RateTracker(clock=clock)
    assert rates.observe("c", 100) is None
    assert rates.observe("c", 0, "logs") is None
    clock.now += 2
    assert rates.observe("c", 100) == 0.0
    assert rates.observe("c", 500, "logs") == 250.0
    rates.forget({"c"}, {"c": ["blocks", "transactions"]})  # logs taken off the chain
    assert rates.observe("c", 900, "logs") is None  # its samples went
    assert rates.observe("c", 100) == 0.0  # the chain's stayed
    rates.forget(set())
    assert rates.observe("c", 100) is None


def test_status_document_gives_each_dataset_its_backlog_rate_and_eta() -> None:
    clock = Clock()
    rates = RateTracker(clock=clock)

    def status(logs_indexed: int) -> ChainStatus:
        datasets = dataset_statuses(
            {
                "blocks": covered(1_000, [], 999),
                "logs": covered(logs_indexed, [(0, 999 - logs_indexed)], 999),
            }
        )
        chain = datasets[1]
        return ChainStatus("c", 999, 999, chain.indexed_blocks, chain.missing_blocks, 1,
                           (0, 999 - logs_indexed), True, datasets)  # fmt: skip

    first = status_document(status(200), rates)
    assert first["datasets"] == [
        {
            "dataset": "blocks",
            "indexed_blocks": 1_000,
            "missing_blocks_count": 0,
            "gap_ranges_count": 0,
            "last_indexed": 999,
            "behind_blocks_count": 0,
            "is_caught_up": True,
            "blocks_per_second": None,
            "eta_seconds": 0.0,
        },
        {
            "dataset": "logs",
            "indexed_blocks": 200,
            "missing_blocks_count": 800,
            "gap_ranges_count": 1,
            "last_indexed": 999,
            "behind_blocks_count": 800,
            "is_caught_up": False,
            "blocks_per_second": None,  # one sample: no rate, so no made-up ETA
            "eta_seconds": None,
        },
    ]
    clock.now += 4
    later = status_document(status(600), rates)
    [blocks, logs] = later["datasets"]
    assert (blocks["blocks_per_second"], blocks["eta_seconds"]) == (0.0, 0.0)
    assert (logs["blocks_per_second"], logs["eta_seconds"]) == (100.0, 4.0)
    assert (later["blocks_per_second"], later["eta_seconds"]) == (100.0, 4.0)
    assert later["missing_blocks_count"] == 400


def test_a_chain_without_a_head_shows_its_datasets_empty() -> None:
    datasets = tuple(DatasetStatus(d, 0, 0, 0, None, 0) for d in ("blocks", "logs"))
    document = status_document(
        ChainStatus("c", None, None, 0, 0, 0, None, False, datasets), RateTracker()
    )
    assert [(d["dataset"], d["blocks_per_second"], d["eta_seconds"]) for d in
            document["datasets"]] == [("blocks", None, None), ("logs", None, None)]  # fmt: skip


def block(number: int, logs_per_tx: list[int | None]) -> Block:
    """A block whose i-th transaction has logs_per_tx[i] logs (None: no receipt)."""
    txs = []
    for index, logs in enumerate(logs_per_tx):
        tx_hash = f"{number:032x}{index:032x}"
        receipt = None
        if logs is not None:
            entries = [Log(i, index, tx_hash, "aa" * 20, ["bb" * 32], "") for i in range(logs)]
            receipt = Receipt(index, tx_hash, "cc" * 32, number, 1, 21_000, 21_000, 1, None,
                              entries)  # fmt: skip
        txs.append(Transaction(tx_hash, index, "dd" * 20, None, 0, None, None, None,
                               receipt=receipt))  # fmt: skip
    return Block(number, f"{number:064x}", f"{number + 1:064x}", 0, None, None, None, None, txs)


BLOCKS = [block(10, [2, 0]), block(11, [1, None, 3]), block(12, []), block(13, [5])]


def test_new_rows_count_only_blocks_that_lacked_each_dataset() -> None:
    fresh = {dataset: [(10, 13)] for dataset in DATASETS}
    assert new_rows(BLOCKS, fresh) == {"blocks": 4, "transactions": 6, "receipts": 5, "logs": 11}
    # Logs added to a chain whose blocks 10..13 had blocks and transactions, and 12..13 logs.
    backfill = {"blocks": [], "transactions": [], "logs": [(10, 11)]}
    assert new_rows(BLOCKS, backfill) == {"blocks": 0, "transactions": 0, "logs": 6}


def test_the_store_deadline_scales_with_every_row_written() -> None:
    assert stored_rows(BLOCKS, ["blocks"]) == 4
    assert stored_rows(BLOCKS, ["blocks", "transactions"]) == 10
    assert stored_rows(BLOCKS, list(DATASETS)) == 21
    assert stored_rows(BLOCKS, ["blocks", "logs"]) == 15


def test_the_terminal_shows_datasets_behind_the_blocks() -> None:
    datasets = dataset_statuses(
        {
            "blocks": covered(1_000, [], 999),
            "transactions": covered(1_000, [], 999),
            "logs": covered(250, [(0, 749)], 999),
        }
    )
    status = ChainStatus("sim", 999, 999, 250, 750, 1, (0, 749), True, datasets)
    assert dataset_bars(status) == [("transactions", 1_000, 1_000), ("logs", 250, 1_000)]
    assert live_line(status).endswith("· missing 750 · gaps 1 · logs 750 blocks behind")
    caught_up = ChainStatus("sim", 999, 999, 1_000, 0, 0, None, True, datasets[:2])
    assert live_line(caught_up).endswith("· missing 0 · gaps 0")


def test_dataset_gauges_follow_the_chains_datasets() -> None:
    metrics = Metrics(CollectorRegistry())
    collector = ProgressCollector(metrics, pool=None)  # type: ignore[arg-type]  # no refresh

    def gauge(dataset: str) -> float | None:
        return metrics.registry.get_sample_value(
            "tindexer_dataset_missing_blocks", {"chain": "c", "dataset": dataset}
        )

    every = dataset_statuses(
        {d: covered(900, [(900, 999)], 899) for d in ("blocks", "transactions", "logs")}
    )
    collector._export_datasets(ChainStatus("c", 999, 899, 900, 100, 1, None, False, every))
    assert [gauge(d) for d in ("blocks", "transactions", "logs")] == [100, 100, 100]
    collector._export_datasets(ChainStatus("c", 999, 899, 900, 100, 1, None, False, every[:2]))
    assert [gauge(d) for d in ("blocks", "transactions", "logs")] == [100, 100, None]


def test_a_new_chain_counts_rows_of_every_dataset_from_zero() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.touch_chain("c")
    for dataset in DATASETS:
        labels = {"chain": "c", "dataset": dataset}
        assert metrics.registry.get_sample_value("tindexer_rows_indexed_total", labels) == 0
    metrics.forget_chain("c")
    labels = {"chain": "c", "dataset": "logs"}
    assert metrics.registry.get_sample_value("tindexer_rows_indexed_total", labels) is None


def test_datasets_on_the_command_line_are_checked_like_the_config() -> None:
    chain = _rpc_url_chain("main", "http://127.0.0.1:8545", "logs, blocks")
    assert chain.datasets == ["blocks", "logs"]
    assert _rpc_url_chain("main", "http://127.0.0.1:8545", None).datasets == list(DATASETS)
    for bad in ("blocks,receipts", "transactions", "blocks,traces"):
        with pytest.raises(typer.Exit):
            _rpc_url_chain("main", "http://127.0.0.1:8545", bad)
