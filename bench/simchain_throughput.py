"""How many blocks per second the simulated chain serves on one core.

The server runs in a subprocess pinned to CPU 0; client processes pinned to the other
CPUs fetch every block of a `--blocks` range exactly once per run (`--method blocks`: full
transactions, `--method receipts`: eth_getBlockReceipts; `--batch-size` calls per batched
request, batches in a shuffled order) from a chain of the given `--profile`; the server
keeps no cache of rendered blocks, so every block is rendered for its request. The clients
speak HTTP/1.1 over raw keep-alive sockets and only count blocks in each body (a sample
is parsed and its parent links checked), so they cost little next to the server.

The server's CPU time (/proc/<pid>/stat) gives blocks per server-CPU-second, which holds
even when the clients are the bottleneck; its run-queue wait (/proc/<pid>/schedstat)
shows how much of the run other processes on this shared machine took its core.

    python bench/simchain_throughput.py            # writes bench/results/simchain.json
    python bench/simchain_throughput.py --profile mainnet --method receipts --blocks 5000 \
        --batch-size 10                            # bench/results/simchain-mainnet-receipts.json
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import multiprocessing as mp
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
VERIFY_EVERY = 25  # one batch in this many is parsed fully and its parent links checked
SERVER_CODE = """
import asyncio, sys
from indexer.simchain.server import SimChainConfig, serve
txs = int(sys.argv[3]) if sys.argv[3] else None
config = SimChainConfig(
    backlog=int(sys.argv[2]), block_time=0, txs_per_block=txs, profile=sys.argv[4]
)
asyncio.run(serve(config, "127.0.0.1", int(sys.argv[1])))
"""
METHODS = {  # --method: (JSON-RPC method, params of block n)
    "blocks": ("eth_getBlockByNumber", lambda n: [hex(n), True]),
    "receipts": ("eth_getBlockReceipts", lambda n: [hex(n)]),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_post(sock: socket.socket, body: bytes, path: str = "/") -> bytes:
    """Send one keep-alive POST and return the response body; raise unless status 200."""
    sock.sendall(
        b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
    )
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(262_144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    header, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status = header.split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError(f"HTTP {status.decode()}: {header!r}")
    length = next(
        int(line.split(b":", 1)[1])
        for line in header.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body_parts = [rest]
    received = len(rest)
    while received < length:
        chunk = sock.recv(min(1_048_576, length - received))
        if not chunk:
            raise ConnectionError("server closed the connection mid-body")
        body_parts.append(chunk)
        received += len(chunk)
    return b"".join(body_parts)


def batch_body(method: str, first: int, size: int) -> bytes:
    name, params = METHODS[method]
    calls = [
        {"jsonrpc": "2.0", "id": i, "method": name, "params": params(n)}
        for i, n in enumerate(range(first, first + size))
    ]
    return json.dumps(calls, separators=(",", ":")).encode()


def verify(method: str, body: bytes, first: int, size: int) -> None:
    """Check that a batch holds exactly the asked blocks, linked by parentHash, or their
    receipts, in order and with their logs."""
    results = [item["result"] for item in sorted(json.loads(body), key=lambda item: item["id"])]
    if method == "receipts":
        for number, receipts in enumerate(results, first):
            assert receipts, f"block {number}: no receipts"
            assert {r["blockNumber"] for r in receipts} == {hex(number)}
            assert [int(r["transactionIndex"], 16) for r in receipts] == list(range(len(receipts)))
        assert any(r["logs"] for receipts in results for r in receipts), "no logs at all"
        return
    assert [int(b["number"], 16) for b in results] == list(range(first, first + size))
    for parent, child in itertools.pairwise(results):
        assert child["parentHash"] == parent["hash"], "broken parent link"
    assert all(len(b["transactions"]) > 0 and "from" in b["transactions"][0] for b in results)


def client(
    method: str, port: int, firsts: list[int], size: int, cpu: int | None, go: Any, out: Any
) -> None:
    """A client process: fetch its batches, report (blocks, bytes, own CPU seconds)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    bodies = [(first, batch_body(method, first, size)) for first in firsts]
    # One answer per call: count what marks each (a block's parentHash, a receipt list's
    # opening), not parse, so the clients stay cheap next to the server.
    marker = b'"parentHash"' if method == "blocks" else b'"result":['
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    go.wait()
    cpu_start = time.process_time()
    blocks = received = 0
    for index, (first, body) in enumerate(bodies):
        response = http_post(sock, body)
        count = response.count(marker)
        if count != size:
            raise RuntimeError(f"batch at {first}: {count} blocks, expected {size}")
        if index % VERIFY_EVERY == 0:
            verify(method, response, first, size)
        blocks += count
        received += len(response)
    out.put((blocks, received, time.process_time() - cpu_start))
    sock.close()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (the server is not our child's child)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process was runnable but another process had its CPU (/proc schedstat):
    on a shared machine, this says how much of the wall time was stolen from the server."""
    threads = Path(f"/proc/{pid}/task").iterdir()
    return sum(int((t / "schedstat").read_text().split()[1]) for t in threads) / 1e9


def server_state(port: int) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /_sim/state HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])


def wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the simulated chain exited during start-up")
        try:
            server_state(port)
            return
        except (OSError, ValueError):
            time.sleep(0.1)
    raise RuntimeError("the simulated chain did not start within 30 s")


def run_once(args: argparse.Namespace, port: int, server_pid: int, run: int) -> dict[str, Any]:
    firsts = list(range(0, args.blocks, args.batch_size))
    random.Random(run).shuffle(firsts)
    client_cpus: list[int | None] = [*sorted(os.sched_getaffinity(0) - {SERVER_CPU})] or [None]
    go, out = mp.Event(), mp.Queue()  # type: ignore[var-annotated]
    workers = [
        mp.Process(
            target=client,
            args=(
                args.method,
                port,
                firsts[i :: args.clients],
                args.batch_size,
                client_cpus[i % len(client_cpus)],
                go,
                out,
            ),
        )
        for i in range(args.clients)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # let every client build its requests and connect before the clock starts
    cpu_before = process_cpu_seconds(server_pid)
    wait_before = runqueue_wait_seconds(server_pid)
    started = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in workers]
    seconds = time.perf_counter() - started
    server_cpu = process_cpu_seconds(server_pid) - cpu_before
    server_wait = runqueue_wait_seconds(server_pid) - wait_before
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a client failed with exit code {worker.exitcode}")
    blocks = sum(r[0] for r in results)
    client_cpu = sum(r[2] for r in results)
    return {
        "blocks": blocks,
        "seconds": round(seconds, 3),
        "blocks_per_second": round(blocks / seconds),
        "server_cpu_seconds": round(server_cpu, 3),
        "server_cpu_utilization": round(server_cpu / seconds, 3),
        "server_runqueue_wait_seconds": round(server_wait, 3),
        "blocks_per_server_cpu_second": round(blocks / server_cpu) if server_cpu else None,
        "client_cpu_utilization": round(client_cpu / seconds / len(set(client_cpus)), 3),
        "megabytes_per_second": round(sum(r[1] for r in results) / seconds / 1e6, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


TABLE = [  # (header, key in a run's result)
    ("blocks/s", "blocks_per_second"),
    ("seconds", "seconds"),
    ("server cpu s", "server_cpu_seconds"),
    ("server busy", "server_cpu_utilization"),
    ("server waited s", "server_runqueue_wait_seconds"),
    ("blocks/server-cpu-s", "blocks_per_server_cpu_second"),
    ("clients busy", "client_cpu_utilization"),
    ("MB/s", "megabytes_per_second"),
    ("load 1m", "load_average_1m"),
]


def print_table(runs: list[dict[str, Any]]) -> None:
    print("run " + " ".join(f"{header:>{len(header)}}" for header, _ in TABLE))
    for number, run in enumerate(runs, 1):
        print(f"{number:>3} " + " ".join(f"{run[key]!s:>{len(header)}}" for header, key in TABLE))


def diagnose(runs: list[dict[str, Any]]) -> str:
    """Say which side limited the runs, from the median CPU and run-queue figures."""
    seconds = statistics.median(r["seconds"] for r in runs)
    server_busy = statistics.median(r["server_cpu_utilization"] for r in runs)
    server_waited = statistics.median(r["server_runqueue_wait_seconds"] for r in runs) / seconds
    clients_busy = statistics.median(r["client_cpu_utilization"] for r in runs)
    if server_busy >= 0.9:
        return "the server (its core was busy >= 90 % of the time)"
    if server_busy + server_waited >= 0.9:
        return (
            f"the server, sharing its core: other processes held it {server_waited:.0%} of "
            "the time, so blocks/s understates it; see blocks/server-cpu-s"
        )
    if clients_busy >= 0.9:
        return "the clients: blocks/s understates the server; see blocks/server-cpu-s"
    return "neither side saturated a core (latency-bound); see blocks/server-cpu-s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=300_000, help="distinct blocks per run")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--profile", default="default", help="the chain's profile")
    parser.add_argument("--method", choices=sorted(METHODS), default="blocks")
    parser.add_argument("--txs-per-block", type=int, help="default: the profile's")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, help="default: bench/results/simchain[-…].json")
    args = parser.parse_args()
    if args.output is None:
        suffix = "" if (args.profile, args.method) == ("default", "blocks") else "-{}-{}"
        name = "simchain" + suffix.format(args.profile, args.method) + ".json"
        args.output = REPO / "bench/results" / name
    if os.cpu_count() is None or SERVER_CPU not in os.sched_getaffinity(0):
        sys.exit(f"needs CPU {SERVER_CPU} for the server")

    load_at_start = os.getloadavg()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server_cmd = [
        sys.executable,
        "-c",
        SERVER_CODE,
        str(port),
        str(args.blocks),
        "" if args.txs_per_block is None else str(args.txs_per_block),
        args.profile,
    ]
    server = subprocess.Popen(server_cmd, cwd=REPO, env=env)
    try:
        os.sched_setaffinity(server.pid, {SERVER_CPU})
        wait_ready(port, server)
        runs = [run_once(args, port, server.pid, run) for run in range(1, args.runs + 1)]
    finally:
        server.terminate()
        server.wait(timeout=10)

    median = statistics.median(r["blocks_per_second"] for r in runs)
    bottleneck = diagnose(runs)
    print_table(runs)
    print(f"median blocks/s: {median:.0f}\nbottleneck: {bottleneck}")

    result = {
        "blocks_per_second_median": median,
        "blocks_per_server_cpu_second_median": statistics.median(
            r["blocks_per_server_cpu_second"] for r in runs
        ),
        "bottleneck": bottleneck,
        "runs": runs,
        "blocks_per_run": args.blocks,
        "batch_size": args.batch_size,
        "profile": args.profile,
        "method": METHODS[args.method][0],
        "txs_per_block": args.txs_per_block,  # null: the profile's
        "client_processes": args.clients,
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "cpu": next(
                (
                    line.split(":", 1)[1].strip()
                    for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")
                ),
                platform.processor(),
            ),
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/simchain_throughput.py", *sys.argv[1:]]),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
