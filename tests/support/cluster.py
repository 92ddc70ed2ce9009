"""Hosts as Linux network namespaces on a private bridge, for tests that need real network
boundaries on one machine.

Each host is a namespace with its loopback up and one veth into a bridge of the run's own
(names carry a per-run suffix, the /24 is one no other interface here uses, so two runs side
by side do not collide). The test process reaches every host through the bridge's address,
the way an operator's machine would; processes started on a host see only its address. A
host is killed by SIGKILLing every process in its namespace and cut off by a blackhole route
(this kernel has no netem and no iptables): packets to that address are dropped, so open
connections hang as they do when a cable is pulled, and new ones fail.

Everything made here is undone by `Cluster.close`, which never raises: processes first
(their process groups, then anything left in a namespace), then namespaces, veths, bridge.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.embedded import die_with_parent

SUBNETS = ipaddress.IPv4Network("10.231.0.0/16")  # one /24 of it per run


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def namespaces_refused() -> str | None:
    """Why this machine cannot make network namespaces, or None when it can."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs the cluster tests as root)"
    probe = f"ti-probe-{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"the kernel refuses network namespaces: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of SUBNETS that no interface of this machine has an address in."""
    used = _ip("-4", "-o", "addr", "show").stdout
    candidates = list(SUBNETS.subnets(new_prefix=24))
    random.shuffle(candidates)
    for subnet in candidates:
        prefix = str(subnet.network_address).rsplit(".", 1)[0]
        if f"inet {prefix}." not in used:
            return subnet
    raise RuntimeError(f"every /24 of {SUBNETS} is in use")


@dataclass
class Host:
    """One namespace: its name, its addresses (the first is its own), its side of the veth."""

    role: str
    namespace: str
    addresses: list[str]
    link: str  # the root namespace's end of the veth, on the bridge
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.addresses[0]

    def command(self, args: Sequence[str]) -> list[str]:
        """`args` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]


class Cluster:
    """A bridge and the hosts on it; `close` removes every one and every process on them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.suffix = uuid.uuid4().hex[:6]
        self.bridge = f"tib{self.suffix}"
        self.subnet = _free_subnet()
        self._next_address = 1
        self.hosts: dict[str, Host] = {}
        self._links = 0
        self.gateway = self._allocate()  # the test process's address on the bridge

    def start(self) -> None:
        """Make the bridge, with the test process's address on it."""
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _allocate(self) -> str:
        address = str(self.subnet.network_address + self._next_address)
        self._next_address += 1
        return address

    def add_host(self, role: str, addresses: int = 1) -> Host:
        """A new namespace with loopback up and `addresses` addresses on one veth."""
        namespace = f"ti-{self.suffix}-{role}"
        assert role not in self.hosts, f"host {role} exists"
        link = f"tiv{self.suffix}{self._links}"
        self._links += 1
        host = Host(role, namespace, [self._allocate() for _ in range(addresses)], link)
        self.hosts[role] = host  # before the first command: close() undoes a half-made host
        _ip("netns", "add", namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("link", "set", link, "master", self.bridge, "up")
        for address in host.addresses:
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        return host

    def spawn(
        self, host: Host, args: Sequence[str], log_name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Run `args` on `host` in a process group of its own, output to `log_name`."""
        with open(self.log_dir / log_name, "ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                host.command(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=die_with_parent,
                start_new_session=True,
            )
        host.processes.append(process)
        return process

    def pids(self, host: Host) -> list[int]:
        """Every process in the host's namespace, whoever started it."""
        listed = _ip("netns", "pids", host.namespace, check=False).stdout.split()
        return [int(pid) for pid in listed]

    def kill_host(self, host: Host) -> list[int]:
        """SIGKILL every process of the host at once, as a power cut would; the pids killed."""
        pids = self.pids(host)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in host.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        return pids

    @contextlib.contextmanager
    def cut_off(self, host: Host, address: str) -> Iterator[None]:
        """Packets from `host` to `address` are dropped for the duration of the block."""
        _ip("-n", host.namespace, "route", "add", "blackhole", f"{address}/32")
        try:
            yield
        finally:
            _ip("-n", host.namespace, "route", "del", "blackhole", f"{address}/32", check=False)

    def remove_host(self, host: Host) -> None:
        """Stop every process of the host, then remove its namespace and veth. Never raises."""
        for process in host.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        # Children that left their group (a daemonizing server) are still in the namespace.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.kill_host(host)
        self._wait_empty(host)
        _ip("netns", "del", host.namespace, check=False)
        _ip("link", "del", host.link, check=False)  # gone with the namespace, normally
        self.hosts.pop(host.role, None)

    def close(self) -> None:
        """Remove every host (processes first), then the bridge. Never raises."""
        for host in list(self.hosts.values()):
            self.remove_host(host)
        _ip("link", "del", self.bridge, check=False)

    def _wait_empty(self, host: Host, timeout: float = 10) -> None:
        """A namespace outlives `ip netns del` while a process is in it: wait them out."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            while self.pids(host) and time.monotonic() < deadline:
                time.sleep(0.05)


@contextlib.contextmanager
def cluster(log_dir: Path) -> Iterator[Cluster]:
    """A cluster for the duration of the block, removed whatever happens inside it."""
    made = Cluster(log_dir)
    try:
        made.start()
        yield made
    finally:
        made.close()
