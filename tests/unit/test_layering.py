"""Dependencies point one way: the exporter is a leaf, the chain package knows no worker, and the
API process loads no worker code. And no module grows past MAX_MODULE_LINES."""

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
# What indexer/chain/ (fetch from a provider) must not import: the worker, its slots and memory
# budget (indexer.worker*), and the activities built on top of it.
ABOVE_THE_CHAIN = ("indexer.worker", "indexer.activities")
MAX_MODULE_LINES = 450


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


def above_the_chain(name: str) -> bool:
    return name == "indexer.worker" or name.startswith(ABOVE_THE_CHAIN)


def test_the_chain_package_imports_no_worker_or_activity() -> None:
    files = sorted((ROOT / "indexer" / "chain").rglob("*.py"))
    assert len(files) > 10, "the walk found too few chain modules to mean anything"
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in imported_modules(path)
        if above_the_chain(name)
    }
    assert not offending, "indexer/chain/ must not import the worker:\n" + "\n".join(
        sorted(offending)
    )


def test_the_chain_rule_names_the_worker_modules() -> None:
    """The check above can fail: each worker-side module it must keep out is one it flags."""
    worker_side = ["indexer.worker", "indexer.worker_budget", "indexer.worker_slots"]
    worker_side += ["indexer.activities", "indexer.activities.index_range"]
    assert all(above_the_chain(name) for name in worker_side)
    assert not any(above_the_chain(name) for name in ["indexer.chain.model", "indexer.config"])
    assert all((ROOT / (name.replace(".", "/") + ".py")).exists() for name in worker_side[1:3])


def python_modules() -> list[Path]:
    """Every Python module of the repository but its tests and benchmarks."""
    modules: list[Path] = []
    for entry in sorted(ROOT.iterdir()):
        if entry.name.startswith(".") or entry.name in ("tests", "bench", "node_modules"):
            continue
        if entry.is_dir():
            modules += sorted(entry.rglob("*.py"))
        elif entry.suffix == ".py":
            modules.append(entry)
    return modules


def test_no_module_outside_tests_and_bench_passes_450_lines() -> None:
    modules = python_modules()
    assert ROOT / "indexer" / "chain" / "fetcher.py" in modules
    assert not any("tests" in path.relative_to(ROOT).parts[:1] for path in modules)
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in modules}
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"split these modules (over {MAX_MODULE_LINES} lines): {too_long}"


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
    expected = {"indexer.worker", "indexer.activities.index_range", "indexer.chain.fetcher"}
    assert expected <= set(loaded)
