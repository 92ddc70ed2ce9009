"""A TCP proxy that makes a network path slow and unreliable: each direction delays every chunk
by `delay` ± `jitter` seconds (order kept), and a share of connections is cut mid-stream.

This kernel has no netem qdisc and no iptables, so a cluster test puts this proxy on a host of
its own between the workers and PostgreSQL/Temporal. It runs as a process on that host:

    python -m tests.support.lossy_link --route ADDR:PORT=ADDR:PORT ... --delay 0.1 ...

Cuts begin when the proxy receives SIGUSR1 (`LossyLink.arm`). A cut connection is closed on
both sides at once (a reset, not a silent hang: the silent kind is the blackhole route's). It
prints a line per connection and per cut, for the test to count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from indexer.embedded import wait_for_port
from tests.support.cluster import Cluster, Host
from tests.support.cluster_hosts import POSTGRES_PORT, START_TIMEOUT, TEMPORAL_PORT, Core
from tests.support.slow_link import delayed_pipe

ROOT = Path(__file__).resolve().parents[2]

CONNECTED, CUT = "connected", "cut"  # the log's lines, each followed by the target port
# Cuts begin on this signal, so the processes behind the link can start up unharmed first;
# connections open by then are as likely to be cut as later ones.
ARM_SIGNAL = signal.SIGUSR1


@dataclass
class Impairment:
    """What the link does to each connection."""

    delay: float  # seconds, each direction
    jitter: float  # ± seconds, uniform
    cut_share: float  # share of connections cut mid-stream
    cut_within: float  # a cut connection lives a uniform 0..cut_within s (from arming, if later)
    rng: random.Random

    def latency(self) -> float:
        return max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))

    def lifetime(self) -> float | None:
        """Seconds until this connection is cut, or None when it is left alone."""
        if self.rng.random() < self.cut_share:
            return self.rng.uniform(0.0, self.cut_within)
        return None


async def _cut_later(
    pipes: asyncio.Future[list[object]], link: Impairment, armed: asyncio.Event
) -> bool:
    """Once cuts are armed, cut a share of connections a random time later; whether it did."""
    arming = asyncio.ensure_future(armed.wait())
    await asyncio.wait({pipes, arming}, return_when=asyncio.FIRST_COMPLETED)
    arming.cancel()
    lifetime = link.lifetime() if armed.is_set() else None
    try:
        await asyncio.wait_for(asyncio.shield(pipes), lifetime)
    except TimeoutError:
        return True
    return False


async def serve_route(
    listen: tuple[str, int], target: tuple[str, int], link: Impairment, armed: asyncio.Event
) -> asyncio.Server:
    """Listen on `listen` and forward each connection to `target` through `link`."""

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        print(CONNECTED, target[1], flush=True)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        pipes = asyncio.gather(
            delayed_pipe(reader, upstream_writer, link.latency),
            delayed_pipe(upstream_reader, writer, link.latency),
            return_exceptions=True,
        )
        with contextlib.suppress(asyncio.CancelledError):
            if await _cut_later(pipes, link, armed):
                print(CUT, target[1], flush=True)
                pipes.cancel()
                for side in (writer, upstream_writer):
                    side.transport.abort()  # a reset, as a dropped connection looks
                await pipes

    return await asyncio.start_server(forward, *listen)


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def _main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    link = Impairment(args.delay, args.jitter, args.cut_share, args.cut_within, rng)
    armed, stop = asyncio.Event(), asyncio.Event()
    servers = []
    for route in args.route:
        listen, target = route.split("=")
        servers.append(await serve_route(_address(listen), _address(target), link, armed))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(ARM_SIGNAL, armed.set)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("listening", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--route", action="append", required=True, help="LISTEN=TARGET")
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--jitter", type=float, default=0.02)
    parser.add_argument("--cut-share", type=float, default=0.0)
    parser.add_argument("--cut-within", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=25)
    asyncio.run(_main(parser.parse_args()))


# --- the link as a host of a test cluster ------------------------------------------------------


@dataclass
class LossyLink:
    """A `proxy` host forwarding its PostgreSQL and Temporal ports to the core host's."""

    host: Host
    log_path: Path
    core: Core
    process: subprocess.Popen[bytes]

    def arm(self) -> None:
        """Start cutting connections (until then the link only delays)."""
        self.process.send_signal(ARM_SIGNAL)

    @property
    def temporal_address(self) -> str:
        return f"{self.host.address}:{TEMPORAL_PORT}"

    def database_url(self, url: str) -> str:
        """`url` (a database on core) through the link."""
        return url.replace(f"@{self.core.postgres_address}:", f"@{self.host.address}:", 1)

    def counts(self) -> dict[str, int]:
        """Connections made and cut so far, over both routes."""
        words = [line.split()[0] for line in self.log_path.read_text().splitlines() if line]
        return {kind: words.count(kind) for kind in (CONNECTED, CUT)}


def start_lossy_link(cluster: Cluster, core: Core, impairment: list[str]) -> LossyLink:
    """The proxy host between workers and core; `impairment` are this module's options."""
    host = cluster.add_host("proxy")
    routes = [
        f"{host.address}:{POSTGRES_PORT}={core.postgres_address}:{POSTGRES_PORT}",
        f"{host.address}:{TEMPORAL_PORT}={core.temporal_host}:{TEMPORAL_PORT}",
    ]
    args = [sys.executable, "-m", "tests.support.lossy_link", *impairment]
    args += [option for route in routes for option in ("--route", route)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = cluster.spawn(host, args, "proxy.log", env)
    wait_for_port(host.address, TEMPORAL_PORT, START_TIMEOUT, process)
    return LossyLink(host, cluster.log_dir / "proxy.log", core, process)


if __name__ == "__main__":
    main()
