"""Dependencies point one way: the exporter is a leaf, and the API process loads no worker code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What the admin API process must never load: the worker, its activities, and what only they
# need (RPC clients, block decoding). Starting workflows goes through indexer.temporal_client.
WORKER_ONLY = ("indexer.worker", "indexer.activities", "indexer.chain")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_exporter_module_imports_the_indexer() -> None:
    files = sorted((ROOT / "exporter").rglob("*.py"))
    assert len(files) > 10, "the walk found too few exporter modules to mean anything"
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in imported_modules(path)
        if name == "indexer" or name.startswith("indexer.")
    }
    assert not offending, "exporter/ must not import the indexer:\n" + "\n".join(sorted(offending))


def test_the_walk_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from indexer import __version__\n    import indexer.rates\n")
    assert imported_modules(module) == {"indexer", "indexer.rates"}


def _modules_after_import(statement: str) -> list[str]:
    """sys.modules of a fresh interpreter after `statement`."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return list(json.loads(result.stdout.splitlines()[-1]))


def test_the_api_process_loads_no_worker_code() -> None:
    # `tindexer api` imports the CLI, then indexer.api.app (and the store, when serving).
    loaded = _modules_after_import(
        "import indexer.cli, indexer.api.app, indexer.api.chains, indexer.api.backfill,"
        " indexer.store.db"
    )
    assert "indexer.api.app" in loaded
    leaked = [name for name in loaded if name.startswith(WORKER_ONLY)]
    assert not leaked, f"the API process imports worker code: {leaked}"


def test_the_worker_does_load_what_the_api_must_not() -> None:
    """The check above can fail: the same probe on the worker finds the worker's modules."""
    loaded = _modules_after_import("import indexer.worker")
    assert {"indexer.worker", "indexer.activities.blocks", "indexer.chain.rpc"} <= set(loaded)
