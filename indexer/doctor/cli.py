"""The `tindexer doctor` command (registered by indexer/cli.py; the work is imported lazily)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from indexer.config import ConfigError, load_settings


def doctor(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML config file (default: $TINDEXER_CONFIG)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document, for scripts.")
    ] = False,
    window: Annotated[
        float, typer.Option(min=0.5, max=600, help="Seconds between the two scrapes.")
    ] = 10.0,
    metrics_url: Annotated[
        list[str] | None,
        typer.Option(
            help="An indexer /metrics URL; repeat for each worker process (default:"
            " doctor_metrics_urls, else metrics_host:metrics_port)."
        ),
    ] = None,
    temporal_metrics_url: Annotated[
        str | None,
        typer.Option(
            help="The Temporal server's Prometheus URL (default: temporal_metrics_url,"
            " $TINDEXER_TEMPORAL_METRICS_URL)."
        ),
    ] = None,
) -> None:
    """Say which component is the bottleneck now, from the live metrics, with the evidence."""
    from indexer.doctor.report import default_metrics_urls, diagnose, render

    console = Console()
    try:
        settings = load_settings(config, temporal_metrics_url=temporal_metrics_url)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    urls = metrics_url or default_metrics_urls(settings)
    report = asyncio.run(diagnose(urls, settings.temporal_metrics_url, window))
    if json_output:
        print(json.dumps(report.as_json(), indent=2))
    else:
        render(report, console)
