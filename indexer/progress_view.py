"""What a person sees in the terminal: backfill progress bars, live lines, the status table."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table

from indexer.config import Settings
from indexer.embedded import embedded_postgres
from indexer.progress import ChainStatus, RateTracker, chain_statuses, eta_seconds
from indexer.store.chains import list_chains

REFRESH_SECONDS = 1.0
LIVE_LINE_SECONDS = 10.0


def eta_text(missing: int, rate: float | None) -> str:
    """The ETA as a person reads it: `42s`, `3m07s`, or `?` while the rate is unknown."""
    eta = eta_seconds(missing, rate)
    if eta is None:
        return "?"
    seconds = int(eta)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def live_line(status: ChainStatus) -> str:
    mark = "[green]live[/green]" if status.is_live_sync else "[yellow]behind[/yellow]"
    last = f"{status.last_indexed:,}" if status.last_indexed is not None else "-"
    behind = "".join(
        f" · {d.dataset} {d.behind_blocks:,} blocks behind" for d in status.datasets_behind
    )
    return (
        f"{status.chain}: {mark} · head {status.head:,} · last indexed {last}"
        f" · missing {status.missing_blocks:,} · gaps {status.gap_ranges}{behind}"
    )


def dataset_bars(status: ChainStatus) -> list[tuple[str, int, int]]:
    """(dataset, blocks with it, blocks stored) of every dataset but blocks: the bar of a dataset
    added to an indexed chain, filling in the blocks already stored."""
    stored = next((d.indexed_blocks for d in status.datasets if d.dataset == "blocks"), 0)
    return [
        (d.dataset, d.indexed_blocks, max(stored, d.indexed_blocks))
        for d in status.datasets
        if d.dataset != "blocks"
    ]


async def _statuses(pool: asyncpg.Pool) -> list[ChainStatus]:
    return await chain_statuses(pool, await list_chains(pool))


async def show_progress(pool: asyncpg.Pool, console: Console, exit_when_live: bool) -> None:
    """A progress bar per chain until its backfill is done, then a live-sync line now and then."""
    rates = RateTracker(window_seconds=15.0)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>8,.0f} blocks/s · ETA {task.fields[eta]}"),
    )
    # Drawn when the figures change, once a refresh: Rich's own 10 redraws a second of 100
    # chains' bars took 8 % of `tindexer up`'s core (bench/chains.py under py-spy).
    with Progress(*columns, console=console, transient=False, auto_refresh=False) as progress:
        tasks: dict[str, TaskID] = {}
        while True:
            statuses = [s for s in await _statuses(pool) if s.head is not None]
            for s in statuses:
                rate = rates.observe(s.chain, s.indexed_blocks) or 0.0
                name = f"backfill {s.chain}"
                if name not in tasks:
                    tasks[name] = progress.add_task(name, rate=0.0, eta="?")
                progress.update(
                    tasks[name],
                    total=s.indexed_blocks + s.missing_blocks,
                    completed=s.indexed_blocks,
                    rate=rate,
                    eta=eta_text(s.missing_blocks, rate),
                )
                for dataset, completed, total in dataset_bars(s):
                    # Shown from when a dataset is behind the blocks until it has caught up.
                    name = f"backfill {s.chain} {dataset}"
                    rate = rates.observe(s.chain, completed, dataset) or 0.0
                    if name not in tasks and completed == total:
                        continue
                    if name not in tasks:
                        tasks[name] = progress.add_task(name, rate=0.0, eta="?")
                    progress.update(
                        tasks[name],
                        total=total,
                        completed=completed,
                        rate=rate,
                        eta=eta_text(total - completed, rate),
                    )
            progress.refresh()
            if statuses and all(s.backfilled for s in statuses):
                break
            await asyncio.sleep(REFRESH_SECONDS)
    while True:
        for s in await _statuses(pool):
            if s.head is not None:
                console.print(live_line(s))
        if exit_when_live:
            return
        await asyncio.sleep(LIVE_LINE_SECONDS)


async def print_status(settings: Settings, console: Console) -> int:
    """The `tindexer status` table; reads PostgreSQL only."""
    with contextlib.ExitStack() as stack:
        database_url = settings.database_url or stack.enter_context(
            embedded_postgres(Path(settings.data_dir) / "postgres")
        )
        conn = await asyncpg.connect(database_url)
        try:
            rows = await list_chains(conn)
            statuses = await chain_statuses(conn, rows)
        finally:
            await conn.close()
    table = Table(
        "chain", "head", "last indexed", "missing blocks", "gap ranges", "largest gap", "live sync"
    )
    for s in statuses:
        gap = f"{s.largest_gap[0]:,}..{s.largest_gap[1]:,}" if s.largest_gap else "-"
        table.add_row(
            s.chain,
            f"{s.head:,}" if s.head is not None else "-",
            f"{s.last_indexed:,}" if s.last_indexed is not None else "-",
            f"{s.missing_blocks:,}",
            str(s.gap_ranges),
            gap,
            "yes" if s.is_live_sync else "no",
        )
    console.print(table)
    behind = [(s, d) for s in statuses for d in s.datasets_behind]
    if behind:
        datasets = Table(
            "chain",
            "dataset",
            "indexed blocks",
            "missing blocks",
            "behind blocks",
            title=("datasets behind the blocks (filling in)"),
        )
        for s, d in behind:
            datasets.add_row(
                s.chain,
                d.dataset,
                f"{d.indexed_blocks:,}",
                f"{d.missing_blocks:,}",
                f"{d.behind_blocks:,}",
            )
        console.print(datasets)
    return 0
