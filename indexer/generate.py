"""Every file the repository commits but generates, rendered in one place.

The Grafana dashboards, the alert rules with their promtool tests and the Alertmanager example,
docs/metrics.md and the admin API's OpenAPI document. `make generate` (`tindexer generate`)
writes them; tests/unit/test_generated_files.py fails when a committed one differs.
"""

from __future__ import annotations

from pathlib import Path

from alerts import build as alerts_build
from dashboards import build as dashboards_build
from exporter import docs
from indexer.api import openapi

ROOT = Path(__file__).resolve().parent.parent
# Directories whose every file is generated: a file the build no longer writes is stale too.
GENERATED_DIRECTORIES = {"dashboards/json": "*.json", "alerts/tests": "*.yml"}


def render_all() -> dict[str, str]:
    """Every generated file's text, by path relative to the repository root."""
    return {
        **dashboards_build.render_all(),
        **alerts_build.render_all(),
        str(docs.DOC_PATH.relative_to(ROOT)): docs.render(),
        str(openapi.DOCUMENT_PATH.relative_to(ROOT)): openapi.render(),
    }


def write(root: Path = ROOT) -> list[Path]:
    """Write every generated file under `root`, each by its own build; the paths written."""
    return [
        *dashboards_build.write(root),
        *alerts_build.write(root),
        docs.write(root / docs.DOC_PATH.relative_to(ROOT)),
        openapi.write(root / openapi.DOCUMENT_PATH.relative_to(ROOT)),
    ]
