"""The simulated chain's admin endpoints (/_sim/...): faults, reorgs, its head."""

from __future__ import annotations

from typing import Any

import aiohttp


async def sim_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to the chain at `url` (no trailing slash); its JSON answer, asserted 200."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}{path}", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def set_faults(url: str, **faults: float) -> None:
    """Replace the given fault fields (ratios, latency, Retry-After…) of the chain at `url`."""
    await sim_post(url, "/_sim/faults", faults)


async def clear_faults(url: str) -> None:
    await set_faults(
        url,
        rate_limit_ratio=0,
        timeout_ratio=0,
        malformed_ratio=0,
        error_ratio=0,
        null_block_ratio=0,
        bad_parent_ratio=0,
        latency_seconds=0,
    )


async def sim_head(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sim/state") as response:
        return int((await response.json())["head"])
