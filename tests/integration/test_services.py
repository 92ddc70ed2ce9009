"""indexer/services.py: the processes `up`, `loadtest` and `workers` start, started for real,
answering, and stopped when their block ends, even when it fails."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import aiohttp
import pytest

from indexer import services
from indexer.embedded import free_port
from indexer.temporal_client import connect_temporal


async def _rpc(url: str, method: str) -> object:
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
    async with aiohttp.ClientSession() as http, http.post(url, json=request) as response:
        return (await response.json())["result"]


async def test_temporal_sim_chain_and_sink_answer_then_stop_even_on_failure(
    tmp_path: Path,
) -> None:
    temporal_port, sim_port, sink_port = free_port(), free_port(), free_port()
    started: list[subprocess.Popen[bytes]] = []
    with pytest.raises(RuntimeError, match="the block failed"), contextlib.ExitStack() as stack:
        started.append(
            stack.enter_context(
                services.temporal_dev_server(temporal_port, tmp_path / "temporal.log")
            )
        )
        started.append(
            stack.enter_context(
                services.sim_chain(
                    sim_port, tmp_path / "sim.log", backlog=10, block_time=0, chain_id=777
                )
            )
        )
        started.append(stack.enter_context(services.otlp_sink(sink_port)))
        sim_url = f"http://{services.HOST}:{sim_port}"
        assert await _rpc(sim_url, "eth_blockNumber") == "0x9"  # backlog 10: blocks 0..9
        assert await _rpc(sim_url, "eth_chainId") == hex(777)
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://{services.HOST}:{sink_port}/v1/traces", data=b"x") as response,
        ):
            assert response.status == 200
        client = await connect_temporal(f"{services.HOST}:{temporal_port}", tracing=False)
        assert await client.service_client.check_health()
        raise RuntimeError("the block failed")
    assert len(started) == 3
    assert [process.poll() is not None for process in started] == [True, True, True]


async def test_a_worker_serves_metrics_and_stops_with_its_block(
    tmp_path: Path, database_url: str, temporal_address: str
) -> None:
    port = free_port()
    config = tmp_path / "worker.toml"
    config.write_text('task_queue = "services-test"\n')
    env = {"DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
    args = ["--config", str(config), "--metrics-port", str(port)]
    with services.worker(args, port, tmp_path / "worker.log", env) as worker:
        assert worker.args[:4] == services.worker_command()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{services.HOST}:{port}/metrics") as response,
        ):
            text = await response.text()
        assert "tindexer_worker_memory_budget_bytes " in text
    assert worker.poll() is not None
