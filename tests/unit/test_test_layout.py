"""The test tree's layout: shared code lives in tests/support, and every test file holds tests."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = TESTS / "support"


def modules() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def is_test_or_conftest(name: str) -> bool:
    """Whether a module name's last part names a test module or a conftest."""
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def imported_names(tree: ast.Module) -> list[str]:
    """Every module of this tree an import names (`tests.…` or relative), with `from a import b`
    giving both a and a.b; other packages' test modules (aiohttp.test_utils) are not ours."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in names if name.startswith((".", "tests.")) or name == "tests"]


def defines_a_test(tree: ast.Module) -> bool:
    """A module-level test_ function, or a Test class with a test_ method, as pytest collects."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)

    def tests_in(body: list[ast.stmt]) -> bool:
        return any(isinstance(n, functions) and n.name.startswith("test_") for n in body)

    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Test")]
    return tests_in(tree.body) or any(tests_in(c.body) for c in classes)


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    offenders = [
        f"{path.relative_to(TESTS)} imports {name}"
        for path in modules()
        for name in imported_names(ast.parse(path.read_text(), str(path)))
        if is_test_or_conftest(name)
    ]
    assert offenders == [], "share code through tests/support instead:\n" + "\n".join(offenders)


def test_every_test_file_defines_a_test() -> None:
    empty = [
        str(path.relative_to(TESTS))
        for path in modules()
        if path.name.startswith("test_") and not defines_a_test(ast.parse(path.read_text()))
    ]
    assert empty == [], f"test files without a test (move helpers to tests/support): {empty}"


def test_helpers_live_in_tests_support() -> None:
    """Outside tests/support a module is a test file, a conftest or a package's __init__."""
    stray = [
        str(path.relative_to(TESTS))
        for path in modules()
        if SUPPORT not in path.parents
        and not is_test_or_conftest(path.stem)
        and path.name != "__init__.py"
    ]
    assert stray == [], f"helper modules outside tests/support: {stray}"
