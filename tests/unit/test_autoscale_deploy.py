"""deploy/: the manifests parse, point at each other, and run commands the CLI really has."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click
import typer.main
import yaml
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.cli import app
from indexer.config import Settings
from indexer.worker import DRAIN_TIMEOUT

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_container_runs_a_real_tindexer_command() -> None:
    commands: click.Group = typer.main.get_command(app)  # type: ignore[assignment]
    deployments = {k: v for k, v in manifests().items() if k[0] == "Deployment"}
    assert {name for _, name in deployments} == {
        "tindexer-worker",
        "tindexer-autoscaler",
        "tindexer-api",
    }
    for deployment in deployments.values():
        for container in containers(deployment):
            program, name, *args = container["args"]
            assert program == "tindexer"
            command = commands.commands[name]
            options = {opt for param in command.params for opt in param.opts}
            for arg in args:
                if arg.startswith("--"):
                    assert arg in options, (name, arg)
            # Parse the arguments as the CLI would, without running the command.
            command.make_context(name, list(args), resilient_parsing=False)


def test_keda_scales_the_worker_deployment_on_the_recommended_replicas() -> None:
    found = manifests()
    scaled = found[("ScaledObject", "tindexer-worker")]
    assert ("Deployment", scaled["spec"]["scaleTargetRef"]["name"]) in found
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == "sum(tindexer_replicas_desired)"
    assert trigger["metadata"]["threshold"] == "1"
    declared = {family.name for family in Metrics(CollectorRegistry()).registry.collect()}
    assert "tindexer_replicas_desired" in declared
    autoscaler = containers(found[("Deployment", "tindexer-autoscaler")])[0]
    assert "--recommend-only" in autoscaler["args"]


def test_workers_get_time_to_drain() -> None:
    worker = manifests()[("Deployment", "tindexer-worker")]
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > DRAIN_TIMEOUT.total_seconds()
    assert "replicas" not in worker["spec"]  # KEDA owns it


def test_the_config_file_is_valid_settings() -> None:
    config = manifests()[("ConfigMap", "tindexer")]
    settings = Settings.model_validate(tomllib.loads(config["data"]["tindexer.toml"]))
    assert settings.metrics_host == "0.0.0.0"
    assert config["data"]["TINDEXER_CONFIG"].endswith("/tindexer.toml")
