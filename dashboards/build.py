"""`tindexer dashboards build`: grafanalib definitions → dashboards/json/*.json in today's format.

grafanalib 0.7.1 writes an old dashboard model (schemaVersion 12, datasources by name, legacy
keys on every panel and target). `modernise` rewrites its output into what current Grafana
saves itself: schemaVersion 39, `{"type": "prometheus", "uid": "${datasource}"}` on every panel
and target, threshold step lists, row panels, and datasource/chain template variables. Grafana
ignores the leading `__generated` key, which tells readers not to edit the file by hand.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard, Template, Templating

from dashboards.common import DATASOURCE, layout

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = (
    "overview",
    "temporal",
    "temporal_server",
    "rpc",
    "postgres",
)  # modules of dashboards/, in menu order
SCHEMA_VERSION = 39  # Grafana 10.4+; older servers migrate it down, newer ones up
TAG = "tindexer"

# label_values() queries that fill each variable's drop-down.
VARIABLE_QUERIES = {
    "chain": ("Chain", "label_values(tindexer_chain_head, chain)"),
    "task_queue": ("Task queue", "label_values(tindexer_task_queue_backlog, task_queue)"),
    "namespace": ("Namespace", "label_values(service_requests, namespace)"),
}

BUILTIN_ANNOTATIONS = {
    "list": [
        {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }
    ]
}
LINKS = [
    {
        "asDropdown": True,
        "icon": "external link",
        "includeVars": False,
        "keepTime": True,
        "tags": [TAG],
        "targetBlank": False,
        "title": "Tindexer dashboards",
        "type": "dashboards",
    }
]


def uid(name: str) -> str:
    """Stable across builds and Grafana instances: derived from the module's file name."""
    return f"{TAG}-{name}"


def module(name: str) -> ModuleType:
    return importlib.import_module(f"dashboards.{name}")


def grafanalib_dashboard(name: str) -> Dashboard:
    """The dashboard as grafanalib objects, before modernising."""
    definition = module(name)
    templates = [Template(name="datasource", query="prometheus", type="datasource")]
    for variable in definition.VARIABLES:
        label, query = VARIABLE_QUERIES[variable]
        templates.append(
            Template(
                name=variable,
                label=label,
                query=query,
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".+",
            )
        )
    return Dashboard(
        title=definition.TITLE,
        description=definition.DESCRIPTION,
        uid=uid(name),
        tags=[TAG],
        panels=layout(definition.ROWS),
        templating=Templating(list=templates),
        refresh="30s",
    )


# --- Rewriting grafanalib's JSON ---------------------------------------------------------------


def _without_nulls(value: Any) -> Any:
    """Drop null fields (Grafana omits unset options), but keep a threshold step's null value."""
    if isinstance(value, dict):
        is_step = "color" in value and "value" in value
        return {
            k: _without_nulls(v)
            for k, v in value.items()
            if v is not None or (is_step and k == "value")
        }
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _target(raw: dict[str, Any], table: bool) -> dict[str, Any]:
    instant = bool(raw["instant"])
    return {
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": raw["expr"],
        "format": "table" if table else raw["format"],
        "instant": instant,
        "legendFormat": raw["legendFormat"] or "__auto",
        "range": not instant,
        "refId": raw["refId"],
    }


def _thresholds(field_defaults: dict[str, Any]) -> dict[str, Any]:
    thresholds = field_defaults.get("thresholds") or {}
    steps = thresholds.get("steps")
    if not isinstance(steps, list) or not steps:
        steps = [{"color": "green", "value": None}]
    return {"mode": thresholds.get("mode") or "absolute", "steps": steps}


def _panel(raw: dict[str, Any]) -> dict[str, Any]:
    kind = raw["type"]
    base = {
        "datasource": dict(DATASOURCE),
        "gridPos": raw["gridPos"],
        "id": raw["id"],
        "title": raw["title"],
        "type": kind,
    }
    if kind == "row":
        repeat = {"repeat": raw["repeat"]} if raw.get("repeat") else {}
        return {"collapsed": False, **base, "panels": [], **repeat}
    if kind == "heatmap":
        return _heatmap(raw, base)
    field_config = raw["fieldConfig"]
    defaults = field_config["defaults"]
    if kind == "table":
        defaults["custom"].pop("displayMode", None)  # superseded by cellOptions
        defaults["custom"]["cellOptions"] = {"type": "auto"}
        defaults["mappings"] = raw.get("mappings") or []
    defaults["thresholds"] = _thresholds(defaults)
    defaults.pop("noValue", None)  # grafanalib's "none" would read as a value; Grafana: No data
    if kind != "timeseries":
        defaults["color"] = {"mode": "thresholds"}
    options = raw.get("options") or {}
    if kind == "timeseries":
        options["legend"]["showLegend"] = True
    if kind == "table":
        options.update({"cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}})
    panel = {
        **base,
        "description": raw["description"],
        "fieldConfig": _without_nulls(field_config),
        "options": _without_nulls(options),
        "targets": [_target(t, kind == "table") for t in raw["targets"]],
    }
    if raw.get("links"):
        panel["links"] = raw["links"]
    if kind == "table":  # instant vectors come with a Time column nobody needs
        panel["transformations"] = [
            {"id": "organize", "options": {"excludeByName": {"Time": True}}}
        ]
    return dict(sorted(panel.items()))


def _heatmap(raw: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """A heatmap of histogram buckets as Grafana 10+ draws it (grafanalib writes the old one)."""
    unit = raw["yAxis"]["format"]
    panel = {
        **base,
        "description": raw["description"],
        "fieldConfig": {
            "defaults": {
                "custom": {"scaleDistribution": {"type": "linear"}},
                "thresholds": _thresholds(raw["fieldConfig"]["defaults"]),
                "unit": unit,
            },
            "overrides": [],
        },
        "options": {
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "rowsFrame": {"layout": "le"},
            "tooltip": {"mode": "single", "yHistogram": True},
            "yAxis": {"axisPlacement": "left", "unit": unit},
        },
        "targets": [_target(t, False) for t in raw["targets"]],
    }
    return dict(sorted(panel.items()))


def _variable(raw: dict[str, Any]) -> dict[str, Any]:
    common = {
        "current": {},
        "hide": 0,
        "includeAll": raw["includeAll"],
        "label": raw["label"] or "Data source",
        "multi": raw["multi"],
        "name": raw["name"],
        "options": [],
        "regex": "",
        "skipUrlSync": False,
    }
    if raw["type"] == "datasource":
        return dict(
            sorted({**common, "query": "prometheus", "refresh": 1, "type": "datasource"}.items())
        )
    variable = {
        **common,
        "allValue": raw["allValue"],
        "datasource": dict(DATASOURCE),
        "definition": raw["query"],
        "query": {
            "qryType": 1,
            "query": raw["query"],
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,  # on time-range change: new chains appear without a reload
        "sort": 1,
        "type": "query",
    }
    return dict(sorted(variable.items()))


def modernise(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """grafanalib's dashboard JSON rewritten into the current Grafana dashboard model."""
    return {
        "__generated": f"generated by `tindexer dashboards build` from {source}, do not edit",
        "annotations": BUILTIN_ANNOTATIONS,
        "description": raw["description"],
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,  # shared crosshair
        "id": None,
        "links": LINKS,
        "liveNow": False,
        "panels": [_panel(p) for p in raw["panels"]],
        "refresh": raw["refresh"],
        "schemaVersion": SCHEMA_VERSION,
        "tags": raw["tags"],
        "templating": {"list": [_variable(v) for v in raw["templating"]["list"]]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": raw["title"],
        "uid": raw["uid"],
        "version": 1,
        "weekStart": "",
    }


def render(name: str) -> dict[str, Any]:
    """The finished dashboard model of dashboards/<name>.py."""
    raw = json.loads(json.dumps(grafanalib_dashboard(name).to_json_data(), cls=DashboardEncoder))
    return modernise(raw, f"dashboards/{name}.py")


def render_all() -> dict[str, str]:
    """Every dashboard's JSON text, by path relative to the repository root."""
    return {
        f"dashboards/json/{name}.json": json.dumps(render(name), indent=2, ensure_ascii=False)
        + "\n"
        for name in DASHBOARDS
    }


def write(root: Path = ROOT) -> list[Path]:
    written = []
    for relative, text in render_all().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
