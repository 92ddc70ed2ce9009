"""Reproducible installs: every dependency comes from a hash-pinned lock matching pyproject."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$")
# aiohttp before 3.12.14 parses requests that can be smuggled past a proxy (CVE-2025-53643).
AIOHTTP_FIXED = Version("3.12.14")


def locked() -> dict[str, tuple[Version, int]]:
    """Each pinned package: its version and how many hashes it carries."""
    pins: dict[str, tuple[Version, int]] = {}
    current = None
    for line in LOCK.read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match[1])
            pins[current] = (Version(match[2]), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["dev"] + extras["bench"]]


def test_every_dependency_is_pinned_with_hashes_and_satisfies_pyproject() -> None:
    pins = locked()
    assert len(pins) > 50, "the lock should pin the whole tree, transitive dependencies too"
    assert all(hashes > 0 for _, hashes in pins.values()), "a pin without a hash"
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in {LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name][0]}, outside pyproject's {requirement}"
        )


def test_aiohttp_has_the_request_smuggling_fixes() -> None:
    assert locked()["aiohttp"][0] >= AIOHTTP_FIXED
    (aiohttp,) = [r for r in declared() if r.name == "aiohttp"]
    assert not aiohttp.specifier.contains("3.12.13"), "pyproject still admits a vulnerable aiohttp"


def test_make_installs_from_the_lock_with_hash_checking() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes" in makefile and "-r $(LOCK)" in makefile
    assert "-e '.[" not in makefile, "an install that resolves dependencies outside the lock"
