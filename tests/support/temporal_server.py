"""The Temporal server's own metrics, as tests read them: where they are and what they say."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class TemporalServer:
    address: str  # host:port of the frontend
    metrics_url: str  # the server's own Prometheus endpoint


async def server_samples(metrics_url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` the server exposes now, with its labels (the parser names a
    counter's samples `…_total`; the server's counters have no such suffix)."""
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        assert response.status == 200, response.status
        text = await response.text()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in (name, f"{name}_total")
    ]
