"""The Alertmanager example routes and inhibits as documented; the Prometheus config loads."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from alerts.alertmanager import DOWN_ALERTS, PAGER, TICKETS, inhibit_rules
from alerts.build import ROOT
from alerts.config import CONFIG
from alerts.groups import all_groups

EXAMPLE = ROOT / "docs" / "alertmanager.example.yml"
DEPLOY = ROOT / "deploy" / "prometheus.yml"
ALERT_NAMES = {a.name for g in all_groups(CONFIG) for a in g.alerts}


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: run `make install` (Debian's prometheus packages)"
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT)


def test_amtool_accepts_the_example() -> None:
    result = run(binary("amtool"), "check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "4 inhibit rules" in result.stdout


def route(*labels: str) -> str:
    result = run(binary("amtool"), "config", "routes", "test", f"--config.file={EXAMPLE}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_critical_pages_and_warning_makes_a_ticket() -> None:
    critical = route("alertname=TindexerPostgresDown", "severity=critical", "instance=w1:9464")
    warning = route("alertname=TindexerRPCRateLimited", "severity=warning", "chain=mainnet")
    assert (critical, warning) == (PAGER, TICKETS)
    assert critical != warning


@pytest.mark.parametrize(
    "alert", sorted({(a.name, a.severity) for g in all_groups(CONFIG) for a in g.alerts})
)
def test_every_alert_reaches_the_receiver_of_its_severity(alert: tuple[str, str]) -> None:
    name, severity = alert
    expected = PAGER if severity == "critical" else TICKETS
    assert route(f"alertname={name}", f"severity={severity}", "chain=mainnet") == expected


def test_alerts_are_grouped_by_alert_name_and_chain() -> None:
    text = EXAMPLE.read_text()
    assert "group_by:\n    - alertname\n    - chain\n" in text


def test_inhibitions_follow_each_alerts_dependencies() -> None:
    targets: dict[str, set[str]] = {source: set() for source in DOWN_ALERTS.values()}
    for rule in inhibit_rules(all_groups(CONFIG)):
        source = re.fullmatch(r'\[\'alertname="(\w+)"\'\]', str(rule["source_matchers"]))
        names = re.search(r'alertname=~?"([^"]+)"', str(rule["target_matchers"]))
        assert source is not None and names is not None, rule
        targets[source.group(1)] |= set(names.group(1).split("|"))
    assert set(targets) == set(DOWN_ALERTS.values())
    for name in set().union(*targets.values()):
        assert name in ALERT_NAMES, f"inhibition names an alert that does not exist: {name}"
    postgres, temporal = targets["TindexerPostgresDown"], targets["TindexerTemporalUnreachable"]
    for consequence in ("TindexerLiveSyncLost", "TindexerSchedulingStalled"):
        assert consequence in postgres and consequence in temporal
    assert "TindexerPostgresQueryLatencyHigh" in postgres - temporal
    assert "TindexerWorkflowStartFailures" in temporal - postgres
    assert "TindexerCollectorFailing" in postgres & temporal  # narrowed by collector
    assert not (postgres | temporal) & set(DOWN_ALERTS.values()), "a root cause is never muted"
    assert "TindexerRPCRateLimited" not in postgres | temporal


def test_deploy_prometheus_config_is_valid_and_loads_the_rules() -> None:
    result = run(binary("promtool"), "check", "config", str(DEPLOY))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    text = DEPLOY.read_text()
    job = re.search(r'job="(\w+)"', CONFIG.job_selector)
    assert job is not None and f"job_name: {job.group(1)}\n" in text
    assert (DEPLOY.parent / "../alerts/rules.yml").resolve() == ROOT / "alerts/rules.yml"
    assert "../alerts/rules.yml" in text


def test_readme_shows_how_to_provision() -> None:
    readme = (ROOT / "README.md").read_text()
    for needle in (
        "deploy/prometheus.yml",
        "dashboards/json",
        "alerts/rules.yml",
        "docs/alertmanager.example.yml",
        "apiVersion: 1",  # a Grafana provisioning file
    ):
        assert needle in readme, needle
