"""Panel builders and grid layout shared by every dashboard.

Dashboard modules say what a panel shows (title, description, unit, query, thresholds) and in
which row; this module turns that into grafanalib objects with positions and ids. The JSON is
then brought up to the current Grafana format by `dashboards.build`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grafanalib.core import (
    GridPos,
    Heatmap,
    Repeat,
    RowPanel,
    Stat,
    Table,
    Target,
    TimeSeries,
    YAxis,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

# Grafana units (https://grafana.com/docs/grafana/latest/panels-visualizations/configure-standard-options/)
SECONDS, BYTES, PERCENT, COUNT, PER_SECOND = "s", "bytes", "percentunit", "short", "ops"
TIMESTAMP = "dateTimeAsIso"

GREEN, YELLOW, RED = "green", "yellow", "red"


def steps(*pairs: tuple[str, float | None]) -> list[dict[str, Any]]:
    """Threshold steps as Grafana writes them: the first step's value is null (−∞)."""
    return [{"color": color, "value": value} for color, value in pairs]


OK_ONLY = steps((GREEN, None))


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and how its series are named."""

    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class PanelSpec:
    """What a panel shows; `kind` is timeseries, stat, table or heatmap."""

    kind: str
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    width: int = 8
    height: int = 8
    thresholds: list[dict[str, Any]] = field(default_factory=lambda: OK_ONLY)
    mappings: list[dict[str, Any]] = field(default_factory=list)
    stacked: bool = False
    minimum: int | None = None
    maximum: int | None = None
    links: tuple[tuple[str, str], ...] = ()  # (title, dashboard module) shown on the panel


def timeseries(
    title: str, description: str, unit: str, *queries: Query, **options: Any
) -> PanelSpec:
    return PanelSpec("timeseries", title, description, unit, queries, **options)


def stat(title: str, description: str, unit: str, *queries: Query, **options: Any) -> PanelSpec:
    options.setdefault("width", 4)
    options.setdefault("height", 5)
    return PanelSpec("stat", title, description, unit, queries, **options)


def table(title: str, description: str, unit: str, *queries: Query, **options: Any) -> PanelSpec:
    return PanelSpec("table", title, description, unit, queries, **options)


def heatmap(title: str, description: str, unit: str, query: Query, **options: Any) -> PanelSpec:
    """A histogram's buckets over time (`query` sums its `_bucket` increases by `le`)."""
    return PanelSpec("heatmap", title, description, unit, (query,), **options)


def value_mappings(texts: Mapping[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """Show numbers as words (e.g. 1 → live): value → (text, color)."""
    options = {
        str(value): {"text": text, "color": color, "index": index}
        for index, (value, (text, color)) in enumerate(texts.items())
    }
    return [{"type": "value", "options": options}]


def dashboard_link(title: str, name: str) -> dict[str, Any]:
    """A panel link to dashboards/<name>.py's dashboard, keeping the time range."""
    return {"title": title, "url": f"/d/tindexer-{name}?${{__url_time_range}}"}


def _targets(spec: PanelSpec) -> list[Target]:
    return [
        Target(
            expr=query.expr,
            legendFormat=query.legend,
            refId=chr(ord("A") + index),
            instant=query.instant or spec.kind == "table",
            format={"table": "table", "heatmap": "heatmap"}.get(spec.kind, "time_series"),
            datasource=DATASOURCE,
        )
        for index, query in enumerate(spec.queries)
    ]


def _panel(spec: PanelSpec, panel_id: int, grid: GridPos) -> Any:
    common: dict[str, Any] = {
        "title": spec.title,
        "description": spec.description,
        "dataSource": DATASOURCE,
        "targets": _targets(spec),
        "gridPos": grid,
        "id": panel_id,
        "thresholds": spec.thresholds,
        "links": [dashboard_link(title, name) for title, name in spec.links],
    }
    if spec.kind == "timeseries":
        return TimeSeries(
            unit=spec.unit,
            mappings=spec.mappings,
            fillOpacity=10,
            stacking={"mode": "normal", "group": "A"} if spec.stacked else {},
            valueMin=spec.minimum,
            valueMax=spec.maximum,
            tooltipMode="multi",
            legendDisplayMode="list",
            **common,
        )
    if spec.kind == "stat":
        return Stat(
            format=spec.unit,
            mappings=spec.mappings,
            reduceCalc="lastNotNull",
            colorMode="background" if spec.mappings else "value",
            graphMode="none" if spec.mappings else "area",
            **common,
        )
    if spec.kind == "table":
        return Table(unit=spec.unit, mappings=spec.mappings, **common)
    if spec.kind == "heatmap":
        return Heatmap(dataFormat="tsbuckets", yAxis=YAxis(format=spec.unit), **common)
    raise ValueError(f"unknown panel kind {spec.kind!r}")


@dataclass(frozen=True)
class PerValue:
    """A row title: Grafana repeats the row once per selected value of `variable`."""

    title: str
    variable: str


Rows = Sequence[tuple[str | PerValue, Sequence[PanelSpec]]]


def layout(rows: Rows) -> list[Any]:
    """Row panels and their panels, placed left to right and wrapped at the grid's width."""
    panels: list[Any] = []
    ids = itertools.count(1)
    y = 0
    for title, specs in rows:
        row_grid = GridPos(1, GRID_WIDTH, 0, y)
        repeat = Repeat(variable=title.variable) if isinstance(title, PerValue) else Repeat()
        name = title.title if isinstance(title, PerValue) else title
        panels.append(
            RowPanel(
                title=name, dataSource=DATASOURCE, gridPos=row_grid, id=next(ids), repeat=repeat
            )
        )
        y += 1
        x, line_height = 0, 0
        for spec in specs:
            if x + spec.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel(spec, next(ids), GridPos(spec.height, spec.width, x, y)))
            x += spec.width
            line_height = max(line_height, spec.height)
        y += line_height
    return panels


# --- Concrete queries (tests evaluate dashboard queries without Grafana) -----------------------

GRAFANA_DEFAULTS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "1h",
    "chain": ".+",
    "task_queue": ".+",
    "namespace": ".+",
}


def concrete(expr: str, values: Mapping[str, str] = GRAFANA_DEFAULTS) -> str:
    """`expr` with Grafana's variables replaced, as Grafana would send it to Prometheus."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)
