"""The store owns all SQL: no SQL string in indexer/, exporter/, dashboards/ or alerts/ outside
indexer/store/.

One exception: exporter/collectors/ keeps its own catalog and health SQL (pg_stat_* views, the
`SELECT 1` probe). The exporter is a generic leaf that also watches databases that are not the
indexer's, so it must not import the indexer's store; only that directory is allowed.

A string counts as SQL when, after leading whitespace and `--` comments, it starts with a
statement, its keywords in capitals or in lower case as SQL is written. Docstrings are skipped;
a keyword inside a sentence (a help text mentioning `SELECT 1`) is not at the string's start,
and a sentence starts Capitalised ("Select the chain"), so neither counts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WALKED = ("indexer", "exporter", "dashboards", "alerts")
STORE = Path("indexer/store")
ALLOWED = (STORE, Path("exporter/collectors"))

_LEADING = r"\A(?:\s|--[^\n]*\n)*"


def _keywords(words: str) -> str:
    """The words in capitals or in lower case: SQL is written so, a sentence starts Capitalised."""
    return r"\s+".join(f"(?:{word}|{word.lower()})" for word in words.split())


# Statement starts with a structure English rarely has, in either case ...
_STATEMENTS = [
    _keywords("SELECT") + r"\s[^;]*?\b" + _keywords("FROM") + r"\s",
    _keywords("INSERT INTO") + r"\s",
    _keywords("UPDATE") + r"\s+[\w.\"]+\s+" + _keywords("SET") + r"\s",
    _keywords("DELETE FROM") + r"\s",
    _keywords("CREATE")
    + r"\s+(?:(?:TEMP|TEMPORARY|UNIQUE|temp|temporary|unique)\s+)?"
    + r"(?:TABLE|INDEX|DATABASE|EXTENSION|VIEW|table|index|database|extension|view)\s",
    _keywords("ALTER TABLE") + r"\s",
    _keywords("DROP") + r"\s+(?:TABLE|INDEX|DATABASE|table|index|database)\s",
    _keywords("WITH")
    + r"\s+(?:(?:RECURSIVE|recursive)\s+)?\w+(?:\s*\([^)]*\))?\s+"
    + _keywords("AS")
    + r"\s+(?:(?:NOT\s+)?MATERIALIZED\s+|(?:not\s+)?materialized\s+)?\(",
    _keywords("COPY")
    + r"\s+[\w.\"]+\s*(?:\([^)]*\)\s*)?"
    + r"(?:FROM|TO|from|to)\s+(?:STDIN|STDOUT|PROGRAM|stdin|stdout|program|')",
    # ... and single words that start a statement only in capitals: `SELECT 1`, `SHOW x`.
    r"SELECT\s+\S",
    r"TRUNCATE\s",
    r"SHOW\s+\w",
    r"ANALYZE\b",
    r"VACUUM\b",
    r"LOCK\s+TABLE\s",
]
SQL_START = re.compile(_LEADING + "(?:" + "|".join(_STATEMENTS) + ")")


def looks_like_sql(text: str) -> bool:
    return SQL_START.match(text) is not None


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (a body's first statement)."""
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, owners) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal but docstrings; an f-string's holes read as {}."""
    skip = _docstrings(tree)
    # ast.walk visits an f-string before its parts, so the parts are skipped in time.
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
            parts = (p.value if isinstance(p, ast.Constant) else "{}" for p in node.values)
            yield node.lineno, "".join(str(part) for part in parts)
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            yield node.lineno, node.value


def _sql_locations() -> list[tuple[Path, int]]:
    found = []
    for package in WALKED:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            relative = path.relative_to(ROOT)
            found += [(relative, line) for line, text in _strings(tree) if looks_like_sql(text)]
    return found


def test_sql_lives_only_in_the_store() -> None:
    outside = [
        f"{path}:{line}"
        for path, line in _sql_locations()
        if not any(path.is_relative_to(allowed) for allowed in ALLOWED)
    ]
    assert outside == [], "SQL outside indexer/store/:\n" + "\n".join(outside)


def test_the_walk_finds_the_store_sql() -> None:
    """A broken pattern or walk would find nothing anywhere and pass the test above vacuously."""
    found = _sql_locations()
    in_store = [loc for loc in found if loc[0].is_relative_to(STORE)]
    in_collectors = [loc for loc in found if loc[0].is_relative_to(Path("exporter/collectors"))]
    assert len(in_store) >= 30, in_store
    assert len({path for path, _ in in_store}) >= 5, in_store
    assert len(in_collectors) >= 5, in_collectors


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1",
        "SELECT pg_backend_pid()",
        "\n    SELECT id, config::text AS config, head FROM chains WHERE name = $1",
        "select n from t",
        "INSERT INTO chains (name) VALUES ($1)",
        "UPDATE chains SET head = $2 WHERE id = $1",
        "DELETE FROM blocks WHERE chain_id = $1",
        "\nCREATE TEMP TABLE IF NOT EXISTS staging (LIKE blocks)",
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer)",
        "ALTER TABLE blocks ADD COLUMN size bigint",
        "\nWITH absorbed AS (\n DELETE FROM indexed_ranges RETURNING 1) SELECT 1",
        "COPY blocks FROM STDIN",
        "TRUNCATE blocks",
        "-- why\nSELECT count(*) FROM blocks",
        "SELECT {} FROM blocks",  # an f-string, its hole read as {}
    ],
)
def test_statement_starts_are_sql(text: str) -> None:
    assert looks_like_sql(text)


@pytest.mark.parametrize(
    "text",
    [
        "Round trip of an active `SELECT 1` probe on the health connection.",
        "Select the chain to index.",
        "select",
        "Update the config, then restart.",
        "update_chain",
        "delete_from",
        "Delete from the stored blocks every orphan.",
        "with the head as the upper bound (inclusive)",
        "copy of the config",
        "blocks",
        "SELECTED",
    ],
)
def test_text_is_not_sql(text: str) -> None:
    assert not looks_like_sql(text)


def test_the_walk_skips_docstrings_and_reads_f_strings() -> None:
    source = '''
"""SELECT id FROM chains: a module docstring."""
def f(table):
    """DELETE FROM blocks: a function docstring."""
    help = "Round trip of a `SELECT 1` probe."
    return f"SELECT count(*) FROM {table}", "INSERT INTO chains (name) VALUES ($1)"
'''
    found = [(line, text) for line, text in _strings(ast.parse(source)) if looks_like_sql(text)]
    assert found == [
        (6, "SELECT count(*) FROM {}"),
        (6, "INSERT INTO chains (name) VALUES ($1)"),
    ]
