"""The dashboards, checked the way Grafana's dashboard-linter would (no Grafana server here)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from alerts.build import render_rules
from alerts.config import CONFIG
from alerts.groups import all_groups
from alerts.rules import Record
from alerts.yamltext import dump
from dashboards.build import DASHBOARDS, SCHEMA_VERSION, render_all
from dashboards.catalog import declared_series, is_counter_series, metric_names, range_calls
from dashboards.common import DATASOURCE, GRID_WIDTH, concrete

RENDERED = render_all()
BOARDS = {Path(path).stem: json.loads(text) for path, text in RENDERED.items()}
DECLARED = declared_series()
RECORDED = {r.name for g in all_groups(CONFIG) for r in g.rules if isinstance(r, Record)}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board["panels"])


def visual_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every target."""
    return [(p["title"], t["expr"]) for p in visual_panels(board) for t in p["targets"]]


def every_expression() -> list[tuple[str, str, str]]:
    return [(name, title, expr) for name, b in BOARDS.items() for title, expr in expressions(b)]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_current_dashboard_model(name: str) -> None:
    board = BOARDS[name]
    assert next(iter(board)) == "__generated" and "do not edit" in board["__generated"]
    assert board["schemaVersion"] >= 39 and board["schemaVersion"] == SCHEMA_VERSION
    assert board["uid"] == f"tindexer-{name}"
    assert "rows" not in board, "legacy rows; use row panels"
    assert {p["type"] for p in panels(board)} <= {"row", "timeseries", "stat", "table", "heatmap"}
    assert panels(board)[0]["type"] == "row", "every panel belongs to a row"
    for panel in panels(board):
        if panel["type"] == "row":
            assert panel["panels"] == [] and not panel["collapsed"]


def test_uids_are_unique() -> None:
    assert len({b["uid"] for b in BOARDS.values()}) == len(BOARDS)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_panel_ids_unique_and_grid_positions_do_not_overlap(name: str) -> None:
    board = BOARDS[name]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        assert grid["h"] > 0 and grid["w"] > 0
        for x, y in itertools.product(
            range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        ):
            assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
            cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_datasource_variable_on_every_panel_and_target(name: str) -> None:
    board = BOARDS[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_used_variable_is_defined(name: str) -> None:
    board = BOARDS[name]
    defined = {v["name"] for v in board["templating"]["list"]} | {
        "__rate_interval",
        "__interval",
        "__range",
    }
    for title, expr in expressions(board):
        used = _variables(expr)
        assert used <= defined, f"{title}: {used - defined}"


def _variables(expr: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)", expr)}


def test_chain_is_a_template_variable_where_panels_are_per_chain() -> None:
    for name in ("overview", "rpc"):
        chain = [v for v in BOARDS[name]["templating"]["list"] if v["name"] == "chain"]
        assert chain and chain[0]["type"] == "query" and chain[0]["includeAll"]
        per_chain = [e for _, e in expressions(BOARDS[name]) if "chain" in e]
        assert all("$chain" in e for e in per_chain), "a per-chain query ignores $chain"


@pytest.mark.parametrize("name", DASHBOARDS)
def test_unit_description_and_threshold_steps_on_every_panel(name: str) -> None:
    for panel in visual_panels(BOARDS[name]):
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{panel['title']}: no unit"
        assert len(panel.get("description", "")) > 20, f"{panel['title']}: no description"
        thresholds = defaults["thresholds"]
        assert thresholds["mode"] == "absolute"
        steps = thresholds["steps"]
        assert isinstance(steps, list) and steps and steps[0]["value"] is None
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values) and all(isinstance(v, int | float) for v in values)
        assert panel["targets"], f"{panel['title']}: no query"


@pytest.mark.parametrize(("name", "title", "expr"), every_expression())
def test_rate_only_over_counters_with_rate_interval(name: str, title: str, expr: str) -> None:
    for call in range_calls(expr):
        assert call.metric is not None, f"{title}: {call.function}() over a non-selector"
        assert is_counter_series(call.metric, DECLARED), f"{title}: {call.metric} not a counter"
        assert call.window == "$__rate_interval", f"{title}: {call.function}[{call.window}]"


@pytest.mark.parametrize(("name", "title", "expr"), every_expression())
def test_only_declared_metric_names(name: str, title: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{title}: no metric"
    unknown = {n for n in names if n not in DECLARED and n not in RECORDED}
    assert not unknown, f"{title}: {unknown} not in exporter/metrics.py, the SDK list or rules"


def test_every_panel_expression_passes_promtool_as_a_recording_rule(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make install`"
    rules = [
        {"record": f"dashboard_check_{name}_{i}", "expr": concrete(expr)}
        for i, (name, _, expr) in enumerate(every_expression())
    ]
    path = tmp_path / "panels.yml"
    path.write_text(dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_recording_rules_the_dashboards_read_exist_in_rules_yml() -> None:
    used = {n for _, _, e in every_expression() for n in metric_names(e) if ":" in n}
    assert used, "the error-budget panels read the SLO recording rules"
    assert all(f"record: {n}" in render_rules() for n in used)


def test_overview_has_an_error_budget_panel_per_slo() -> None:
    budget = [p for p in visual_panels(BOARDS["overview"]) if "error budget left" in p["title"]]
    exprs = " ".join(t["expr"] for p in budget for t in p["targets"])
    assert len(budget) == 3
    assert "chain:tindexer_live_sync_lost:ratio30d" in exprs
    assert "chain:tindexer_rpc_requests_failed:ratio_rate30d" in exprs
    assert "chain:tindexer_block_freshness_slow:ratio_rate30d" in exprs
    assert all(p["fieldConfig"]["defaults"]["unit"] == "percentunit" for p in budget)


# What issue 5 says each dashboard shows, as the metrics that answer it.
SHOWS = {
    "overview": [
        "tindexer_chain_live_sync",
        "tindexer_chain_head",
        "tindexer_chain_last_indexed",
        "tindexer_chain_missing_blocks",
        "tindexer_chain_gap_ranges",
        "tindexer_blocks_indexed_total",
        "tindexer_backfill_eta_seconds",
        "tindexer_reorgs_total",
        "tindexer_blocks_scheduled_total",
        "tindexer_workflows_started_total",
        "tindexer_inflight_ranges",
        "tindexer_workflow_start_failures_total",
        # issue 24: freshness per chain, from first seen and from the block's timestamp
        "tindexer_block_freshness_seconds_bucket",
        "tindexer_block_freshness_seconds_count",
        "tindexer_block_age_at_commit_seconds_bucket",
    ],
    "temporal": [
        "tindexer_task_queue_backlog",
        "tindexer_task_queue_backlog_age_seconds",
        "tindexer_task_queue_pollers",
        "tindexer_task_queue_add_rate",
        "tindexer_task_queue_dispatch_rate",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_worker_task_slots_used",
        "temporal_worker_task_slots_available",
        "tindexer_rate_limited_total",
        "temporal_request_failure_total",
        "tindexer_activity_duration_seconds_bucket",
        "tindexer_activity_timeouts_total",
    ],
    "temporal_server": [  # issue 23, item 2: the server's own metrics, names as it emits them
        "service_requests",
        "service_errors",
        "service_error_with_type",
        "service_latency_bucket",
        "service_errors_resource_exhausted",
        "persistence_requests",
        "persistence_error_with_type",
        "persistence_latency_bucket",
        "persistence_errors_resource_exhausted",
        "task_schedule_to_start_latency_bucket",
        "approximate_backlog_count",
        "approximate_backlog_age_seconds",
        "poll_success",
        "poll_timeouts",
        "temporal_request_failure_total",
        "temporal_long_request_failure_total",
    ],
    "rpc": [
        "tindexer_rpc_requests_total",
        "tindexer_rpc_request_duration_seconds_bucket",
        "tindexer_rpc_concurrency_limit",
        "tindexer_provider_chain_id_mismatch",
        "tindexer_provider_head_unverified",
        "tindexer_provider_fork_disagreements_total",
    ],
    "postgres": [
        "tindexer_pg_up",
        "tindexer_pg_connections",
        "tindexer_pg_max_connections",
        "tindexer_pg_connection_utilization_ratio",
        "tindexer_pg_locks_waiting",
        "tindexer_pg_deadlocks_total",
        "tindexer_pg_longest_transaction_seconds",
        "tindexer_pg_cache_hit_ratio",
        "tindexer_pg_database_size_bytes",
        "tindexer_pg_probe_latency_seconds_bucket",
        "tindexer_pg_query_duration_seconds_bucket",
    ],
}


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_shows_what_the_issue_asks(name: str) -> None:
    used = {n for _, e in expressions(BOARDS[name]) for n in metric_names(e)}
    assert set(SHOWS[name]) <= used, set(SHOWS[name]) - used


def test_resource_exhausted_panels_match_both_spellings_of_the_rps_cause() -> None:
    rps = [e for t, e in expressions(BOARDS["temporal_server"]) if "RPS limit" in t]
    assert rps and all("RpsLimit|RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT" in e for e in rps)


def test_overview_and_temporal_link_to_the_temporal_server_dashboard() -> None:
    for name in ("overview", "temporal"):
        urls = [link["url"] for p in visual_panels(BOARDS[name]) for link in p.get("links", [])]
        assert any(u.startswith("/d/tindexer-temporal_server?") for u in urls), name


def test_the_scanner_finds_metrics_not_functions_labels_or_durations() -> None:
    expr = (
        'sum by (chain) (rate(a_total{b="c d"}[5m] offset 1h)) / 1e3\n'
        "and on (chain) max(x:y:z) > 2 or time() - g"
    )
    assert metric_names(expr) == {"a_total", "x:y:z", "g"}
    (call,) = range_calls(expr)
    assert (call.function, call.metric, call.window) == ("rate", "a_total", "5m")
    assert range_calls("rate(sum(x_total)[5m:])")[0].metric is None


def test_concrete_replaces_grafana_variables() -> None:
    expr = 'rate(x_total{chain=~"$chain"}[$__rate_interval]) * ${__range}'
    assert concrete(expr) == 'rate(x_total{chain=~".+"}[1m]) * 1h'


def test_cli_builds_into_a_root_and_checks_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from indexer.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["dashboards", "build", "--check"]).exit_code == 0
    empty = runner.invoke(app, ["dashboards", "build", "--check", "--root", str(tmp_path)])
    assert empty.exit_code == 1 and "stale: dashboards/json/overview.json" in empty.output
    assert runner.invoke(app, ["dashboards", "build", "--root", str(tmp_path)]).exit_code == 0
    for path, text in RENDERED.items():
        assert (tmp_path / path).read_text() == text
