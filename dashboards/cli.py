"""`tindexer dashboards …`: build the Grafana dashboards' JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Grafana dashboards as code (dashboards/).")


@app.command()
def build(
    root: Annotated[
        Path | None, typer.Option(help="Repository root to write into (default: this checkout).")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Write nothing; exit 1 if a committed file is stale.")
    ] = False,
) -> None:
    """Write dashboards/json/*.json from the grafanalib definitions."""
    from dashboards.build import ROOT, render_all, write

    base = root or ROOT
    if check:
        stale = [name for name, text in render_all().items() if _read(base / name) != text]
        for name in stale:
            typer.echo(f"stale: {name}")
        raise typer.Exit(1 if stale else 0)
    for path in write(base):
        typer.echo(f"wrote {path}")


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
