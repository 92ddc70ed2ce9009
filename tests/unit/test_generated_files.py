"""Every committed generated file is what `make generate` writes from today's sources."""

from __future__ import annotations

import difflib
from pathlib import Path

from indexer.generate import GENERATED_DIRECTORIES, ROOT, render_all, write

COMMAND = "make generate"


def test_every_committed_generated_file_is_current(tmp_path: Path) -> None:
    written = sorted(str(path.relative_to(tmp_path)) for path in write(tmp_path))
    assert written == sorted(render_all()), "indexer/generate.py renders and writes other files"
    stale = [
        relative
        for relative in written
        if not (ROOT / relative).is_file()
        or (ROOT / relative).read_text() != (tmp_path / relative).read_text()
    ]
    leftover = [
        str(path.relative_to(ROOT))
        for directory, pattern in GENERATED_DIRECTORIES.items()
        for path in sorted((ROOT / directory).glob(pattern))
        if str(path.relative_to(ROOT)) not in written
    ]
    assert not stale and not leftover, (
        f"stale generated files, run `{COMMAND}`: {stale}"
        + (f"; files it no longer writes, delete them: {leftover}" if leftover else "")
        + "".join(_diff(tmp_path, relative) for relative in stale[:1])
    )


def _diff(tmp_path: Path, relative: str, lines: int = 20) -> str:
    """The first lines of the committed file's difference from the regenerated one."""
    committed = ROOT / relative
    old = committed.read_text().splitlines() if committed.is_file() else []
    new = (tmp_path / relative).read_text().splitlines()
    diff = difflib.unified_diff(
        old, new, f"{relative} (committed)", f"{relative} (generated)", lineterm=""
    )
    return "\n" + "\n".join(list(diff)[:lines])


def test_make_generate_runs_the_one_generator() -> None:
    """The Makefile's target calls `tindexer generate`, so it writes what this test checks."""
    makefile = (ROOT / "Makefile").read_text().splitlines()
    start = makefile.index("generate: $(STAMP)") + 1
    recipe = []
    for line in makefile[start:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    assert recipe == ["$(VENV)/bin/tindexer generate"]
