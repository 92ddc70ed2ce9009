"""The cluster harness's pure parts: why it skips, and which subnet a run takes."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import cluster


def test_skips_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 1000)
    reason = cluster.namespaces_refused()
    assert reason is not None and "root" in reason


def test_skips_without_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    reason = cluster.namespaces_refused()
    assert reason is not None and "iproute2" in reason


def test_skips_where_the_kernel_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = subprocess.CompletedProcess([], 1, "", "mount --make-shared /run/netns failed\n")
    monkeypatch.setattr(cluster.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cluster, "_ip", lambda *args, check=True: refused)
    assert cluster.namespaces_refused() == (
        "the kernel refuses network namespaces: mount --make-shared /run/netns failed"
    )


def test_a_run_takes_a_subnet_no_interface_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    free = 77
    used = "".join(
        f"9: tib{n}    inet 10.231.{n}.1/24 scope global tib{n}\n" for n in range(256) if n != free
    )
    listing = subprocess.CompletedProcess([], 0, used, "")
    monkeypatch.setattr(cluster, "_ip", lambda *args, check=True: listing)
    assert str(cluster._free_subnet()) == f"10.231.{free}.0/24"
