"""`tindexer alerts …`: build the rules, their promtool tests and the Alertmanager example."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Prometheus alert rules as code (alerts/).")


@app.command()
def build(
    root: Annotated[
        Path | None, typer.Option(help="Repository root to write into (default: this checkout).")
    ] = None,
    runbook_base_url: Annotated[
        str | None,
        typer.Option(help="Absolute URL of docs/runbooks.md for runbook_url annotations."),
    ] = None,
    job_selector: Annotated[
        str | None,
        typer.Option(help='Matcher of the indexer\'s scrape job (default: job="tindexer").'),
    ] = None,
    temporal_job_selector: Annotated[
        str | None,
        typer.Option(
            help='Matcher of the Temporal server\'s scrape job (default: job="temporal").'
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Write nothing; exit 1 if a committed file is stale.")
    ] = False,
) -> None:
    """Write alerts/rules.yml, alerts/tests/*.yml and docs/alertmanager.example.yml."""
    from alerts.build import ROOT, render_all, write
    from alerts.config import CONFIG

    base = root or ROOT
    config = CONFIG
    if runbook_base_url:
        config = dataclasses.replace(config, runbook_base_url=runbook_base_url)
    if job_selector:
        config = dataclasses.replace(config, job_selector=job_selector)
    if temporal_job_selector:
        config = dataclasses.replace(config, temporal_job_selector=temporal_job_selector)
    if check:
        stale = [name for name, text in render_all(config).items() if _read(base / name) != text]
        for name in stale:
            typer.echo(f"stale: {name}")
        raise typer.Exit(1 if stale else 0)
    for path in write(base, config):
        typer.echo(f"wrote {path}")


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
