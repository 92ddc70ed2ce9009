"""Reading /metrics endpoints twice, a window apart: what each series did in between.

Parsing is prometheus_client's own (`text_string_to_metric_families`), run in a thread: a
Temporal server's page is about a megabyte and takes a second of CPU to parse, which must not
stall the admin API's event loop. The parser names every counter sample `…_total`, whether
the endpoint wrote the suffix (ours) or not (the Temporal server's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from indexer.public_url import public_url

INDEXER = "indexer"
TEMPORAL = "temporal"
SCRAPE_TIMEOUT_SECONDS = 10.0  # a 10k-series /metrics answers in ~0.2 s; 10 s is a dead one
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a busy Temporal server writes a few MB

Labels = frozenset[tuple[str, str]]
# (sample name, labels) -> value, as one scrape returned them.
Samples = dict[tuple[str, Labels], float]


def shown_url(url: str) -> str:
    """What a report may show of an endpoint: `scheme://host[:port]`, and `/metrics` if that is
    its path. A hosted server's endpoint can carry a token in its user-info, path or query, and
    GET /doctor is a read anyone who reaches the API may make."""
    shown = public_url(url)
    path = url.split("?", 1)[0].split("#", 1)[0]
    return f"{shown}/metrics" if path.endswith("/metrics") and path.count("/") == 3 else shown


def parse_samples(text: str, families: Collection[str] | None = None) -> tuple[Samples, int]:
    """The samples of a Prometheus text page (of `families` only, if given), and how many it had.

    A family is named as in the text format, a counter with or without its `_total`.
    """
    samples: Samples = {}
    seen = 0
    for family in text_string_to_metric_families(text):
        seen += len(family.samples)
        if families is None or family.name in families or f"{family.name}_total" in families:
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, seen


@dataclass
class Scrape:
    """One read of one endpoint: its samples, or why there are none."""

    url: str
    kind: str  # INDEXER or TEMPORAL
    samples: Samples | None
    error: str | None
    at: float  # time.monotonic() when the answer was read
    series: int = 0  # samples on the page, read or not

    @property
    def shown(self) -> str:
        return shown_url(self.url)


async def scrape(
    session: aiohttp.ClientSession, url: str, kind: str, families: Collection[str] | None = None
) -> Scrape:
    """GET `url` and parse it (keeping `families`); an unreachable or broken endpoint is an
    error, not an exception."""
    try:
        async with session.get(url) as response:
            if response.status != 200:
                return Scrape(url, kind, None, f"HTTP {response.status}", time.monotonic())
            body = bytearray()
            async for chunk in response.content.iter_chunked(1024 * 1024):
                body += chunk
                if len(body) > MAX_PAGE_BYTES:
                    return Scrape(url, kind, None, f"page over {MAX_PAGE_BYTES} bytes", 0.0)
        at = time.monotonic()
        text = body.decode("utf-8", "replace")
        samples, series = await asyncio.to_thread(parse_samples, text, families)
        return Scrape(url, kind, samples, None, at, series)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}".rstrip(": ").replace(url, shown_url(url))
        return Scrape(url, kind, None, error, time.monotonic())
    except ValueError as exc:  # the parser's answer to a page that is not Prometheus text
        return Scrape(url, kind, None, f"not Prometheus text: {exc}", time.monotonic())


async def scrape_all(
    targets: Iterable[tuple[str, str]], families: Collection[str] | None = None
) -> list[Scrape]:
    """Scrape every (url, kind) at once."""
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(
            await asyncio.gather(*(scrape(session, url, kind, families) for url, kind in targets))
        )


@dataclass
class Change:
    """What one endpoint's series did between two scrapes `seconds` apart."""

    url: str
    kind: str
    before: Samples
    after: Samples
    seconds: float

    def _matching(self, samples: Samples, name: str, labels: dict[str, str]) -> Iterator[Labels]:
        wanted = set(labels.items())
        for sample_name, sample_labels in samples:
            if sample_name == name and wanted <= sample_labels:
                yield sample_labels

    def latest(self, name: str, **labels: str) -> dict[Labels, float]:
        """Each series of `name` (with `labels`) as the second scrape saw it."""
        return {key: self.after[(name, key)] for key in self._matching(self.after, name, labels)}

    def increase(self, name: str, **labels: str) -> dict[Labels, float]:
        """Each counter series' increase over the window, as Prometheus' increase() reads it.

        A series missing from the first scrape was created since, at zero (Temporal creates its
        counters on their first increment); one that went down was reset by a restart.
        """
        increases = {}
        for key in self._matching(self.after, name, labels):
            now, then = self.after[(name, key)], self.before.get((name, key), 0.0)
            increases[key] = now - then if now >= then else now
        return increases


def total(name: str) -> str:
    """A counter's sample name as the parser gives it: with `_total`."""
    return name if name.endswith("_total") else f"{name}_total"


def label(labels: Labels, name: str) -> str:
    """One label's value ("" when absent)."""
    return dict(labels).get(name, "")
