"""py-spy for the benchmarks: record a process, and summarise where its time went."""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def pyspy_binary() -> Path:
    """py-spy beside this Python, else $PY_SPY or one on PATH (e.g. in a tools venv)."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return beside
    return Path(os.environ.get("PY_SPY") or shutil.which("py-spy") or beside)


def record(
    pid: int, output: Path, rate: int = 250, seconds: float | None = None
) -> subprocess.Popen:
    """py-spy recording `pid`'s collapsed stacks into `output` (for `seconds`, else until the
    process exits); the caller waits for it."""
    duration = [] if seconds is None else ["--duration", str(max(1, round(seconds)))]
    return subprocess.Popen(
        [
            *(str(pyspy_binary()), "record", "--pid", str(pid), "--rate", str(rate), *duration),
            *("--format", "raw", "--nonblocking", "--output", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def hot_frames(*profiles: Path, top: int = 12) -> dict[str, Any]:
    """py-spy's collapsed stacks (one or more files, added up): the busiest leaf frames, and
    the busiest frames of our own code, as shares of all samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for profile in profiles:
        if not profile.exists():
            continue
        for line in profile.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            total += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
            leaf[frames[-1]] += int(count)
    if not total:
        return {}
    ours = [
        (frame, n)
        for frame, n in inclusive.most_common()
        if re.search(r"\((indexer|exporter)/", frame) and "cli.py" not in frame
    ]
    return {
        "samples": total,
        "self": {frame: round(n / total, 3) for frame, n in leaf.most_common(top)},
        "inclusive_ours": {frame: round(n / total, 3) for frame, n in ours[:top]},
    }
