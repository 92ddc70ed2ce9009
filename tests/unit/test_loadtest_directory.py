"""The loadtest's work directory: gone after a run, kept (and named) after a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.loadtest import removed_unless_failed


def test_a_finished_run_leaves_no_directory(tmp_path: Path) -> None:
    work = tmp_path / "run"
    (work / "pg").mkdir(parents=True)
    (work / "pg" / "base").write_bytes(b"x" * 1024)
    said: list[str] = []
    with removed_unless_failed(work, said.append):
        pass
    assert not work.exists()
    assert said == []


def test_a_failed_run_keeps_its_logs_and_says_where(tmp_path: Path) -> None:
    work = tmp_path / "run"
    work.mkdir()
    (work / "worker-0.log").write_text("the failure")
    said: list[str] = []
    with pytest.raises(RuntimeError), removed_unless_failed(work, said.append):
        raise RuntimeError("stalled")
    assert (work / "worker-0.log").read_text() == "the failure"
    assert said == [f"the run's logs and databases are kept in {work}"]
