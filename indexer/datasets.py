"""What a chain indexes: its datasets, and which of them need receipts fetched.

Blocks are always indexed: the reorg checks, the head and the ranges hang on them. A receipt
is stored in its transaction's row, so `receipts` needs `transactions`; logs come from the
receipts, so `logs` needs receipts fetched but not stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

Dataset = Literal["blocks", "transactions", "receipts", "logs"]
DATASETS: tuple[Dataset, ...] = get_args(Dataset)  # in dependency order
NEED_RECEIPTS: frozenset[Dataset] = frozenset({"receipts", "logs"})


def normalize_datasets(datasets: Iterable[str]) -> list[Dataset]:
    """The datasets in canonical order, or ValueError saying which rule they break."""
    wanted = set(datasets)
    unknown = sorted(wanted - set(DATASETS))
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; choose from {list(DATASETS)}")
    if "blocks" not in wanted:
        raise ValueError("datasets must include 'blocks': every other dataset hangs on them")
    if "receipts" in wanted and "transactions" not in wanted:
        raise ValueError("'receipts' are stored in the transaction rows: add 'transactions'")
    return [d for d in DATASETS if d in wanted]


def needs_receipts(datasets: Iterable[str]) -> bool:
    """Whether indexing these datasets fetches receipts (eth_getBlockReceipts)."""
    return not NEED_RECEIPTS.isdisjoint(datasets)
