"""The doctor's run: scrape every endpoint twice, judge the window, report as JSON or for people."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

from indexer.config import Settings
from indexer.doctor import indexer_rules, temporal_rules
from indexer.doctor.scrape import INDEXER, TEMPORAL, Change, Scrape, scrape_all, shown_url
from indexer.doctor.verdict import NOTE, OK, SEVERITIES, WARNING, Verdict

DEFAULT_WINDOW_SECONDS = 10.0  # long enough that one refusal a second shows as a rate
# Metrics the "nothing is throttling" verdict read (it names them as every verdict does).
CHECKED = [
    temporal_rules.SERVER_REJECTIONS,
    temporal_rules.RATE_LIMITED,
    temporal_rules.REQUEST_ERRORS,
    *temporal_rules.SDK_FAILURES,
    indexer_rules.RPC_REQUESTS,
    indexer_rules.PROVIDER_UP,
    indexer_rules.PG_UP,
    indexer_rules.PG_LOCKS_WAITING,
    indexer_rules.PG_QUERY_DURATION,
    indexer_rules.PG_POOL,
    indexer_rules.BUDGET_WAIT,
]
# Every family a rule reads: the rest of a page is parsed past, not kept.
FAMILIES = frozenset(
    [
        *CHECKED,
        indexer_rules.PG_LOCK_WAIT_OLDEST,
        indexer_rules.PG_LONGEST_TRANSACTION,
        indexer_rules.PG_UTILIZATION,
        indexer_rules.COLLECTOR_DURATION,
        indexer_rules.BUDGET,
        indexer_rules.IN_FLIGHT,
    ]
)


@dataclass
class Report:
    verdicts: list[Verdict]
    sources: list[dict[str, Any]]
    window_seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "verdicts": [verdict.as_json() for verdict in self.verdicts],
            "sources": self.sources,
            "window_seconds": round(self.window_seconds, 3),
        }


def default_metrics_urls(settings: Settings) -> list[str]:
    """`doctor_metrics_urls`, else this host's /metrics on the configured port (and those of
    `tindexer up`'s worker processes)."""
    if settings.doctor_metrics_urls:
        return list(settings.doctor_metrics_urls)
    host = settings.metrics_host
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    ports = [settings.metrics_port, *settings.worker_metrics_ports()]
    return [f"http://{host}:{port}/metrics" for port in ports]


def _change(first: Scrape, second: Scrape) -> Change | None:
    if first.samples is None or second.samples is None:
        return None
    return Change(first.shown, first.kind, first.samples, second.samples, second.at - first.at)


def _source(first: Scrape, second: Scrape) -> dict[str, Any]:
    failed = second if second.samples is None else first
    return {
        "url": first.shown,
        "kind": first.kind,
        "ok": failed.samples is not None,
        "series": second.series,
        "error": failed.error,
    }


def _unseen_temporal(temporal_url: str | None, scrape: Scrape | None) -> Verdict:
    if temporal_url is None:
        why = "no temporal_metrics_url configured (TINDEXER_TEMPORAL_METRICS_URL or"
        why += " --temporal-metrics-url)"
    else:
        why = f"{shown_url(temporal_url)} did not answer ({scrape.error if scrape else 'not read'})"
    return Verdict(
        component="temporal-server",
        severity=NOTE,
        message=f"cannot see the Temporal server: {why}; its limits were not judged",
        metrics=[],
        evidence={"temporal_metrics_url": temporal_url and shown_url(temporal_url)},
        advice="point temporal_metrics_url at the server's Prometheus endpoint"
        " (`temporal server start-dev --metrics-port N`, or the cluster's)",
    )


def judge(first: list[Scrape], second: list[Scrape], temporal_url: str | None) -> Report:
    """Verdicts on two rounds of scrapes of the same endpoints, in the same order."""
    changes = [_change(a, b) for a, b in zip(first, second, strict=True)]
    indexer = [c for c in changes if c is not None and c.kind == INDEXER]
    server = next((c for c in changes if c is not None and c.kind == TEMPORAL), None)
    verdicts: list[Verdict] = []
    if server is not None:
        verdicts += temporal_rules.server_rejections(server)
    if not verdicts:  # the server's own verdict says more than the SDK's: which limit, and why
        verdicts += temporal_rules.client_rejections(indexer, server is not None)
    verdicts += indexer_rules.provider_rate_limits(indexer)
    verdicts += indexer_rules.providers_down(indexer)
    verdicts += indexer_rules.postgres(indexer)
    verdicts += indexer_rules.memory_budget(indexer)
    for a, b in zip(first, second, strict=True):
        if a.kind == INDEXER and (a.samples is None or b.samples is None):
            error = (b if b.samples is None else a).error
            verdicts.append(
                Verdict(
                    component="indexer",
                    severity=WARNING,
                    message=f"cannot read the indexer's metrics at {a.shown}: {error}",
                    metrics=[],
                    evidence={"url": a.shown, "error": error},
                    advice="is the process running, and is this its --metrics-port?",
                )
            )
    temporal_scrape = next((b for b in second if b.kind == TEMPORAL), None)
    if server is None:
        verdicts.append(_unseen_temporal(temporal_url, temporal_scrape))
    if not any(v.severity not in (NOTE, OK) for v in verdicts):
        verdicts.append(
            Verdict(
                component="indexer",
                severity=OK,
                message="nothing is throttling: no refusals, 429s, lock waits, slow queries or"
                " full memory budgets above their thresholds",
                metrics=CHECKED,
                evidence={"sources_read": len([c for c in changes if c is not None])},
            )
        )
    verdicts.sort(key=lambda v: SEVERITIES.index(v.severity))
    window = max((c.seconds for c in changes if c is not None), default=0.0)
    return Report(verdicts, [_source(a, b) for a, b in zip(first, second, strict=True)], window)


async def diagnose(
    metrics_urls: list[str],
    temporal_url: str | None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> Report:
    """Scrape the indexer's endpoints (and the Temporal server's) twice, `window_seconds` apart."""
    targets = [(url, INDEXER) for url in metrics_urls]
    if temporal_url:
        targets.append((temporal_url, TEMPORAL))
    first = await scrape_all(targets, FAMILIES)
    await asyncio.sleep(window_seconds)
    second = await scrape_all(targets, FAMILIES)
    report = judge(first, second, temporal_url)
    report.window_seconds = report.window_seconds or window_seconds  # nothing answered twice
    return report


STYLE = {"critical": "bold red", "warning": "yellow", "note": "cyan", "ok": "green"}


def render(report: Report, console: Console) -> None:
    """The report for a person: each verdict with its evidence, metric and advice."""
    console.print(f"[bold]tindexer doctor[/bold] — a window of {report.window_seconds:.1f} s")
    for source in report.sources:
        state = f"{source['series']:,} series" if source["ok"] else f"[red]{source['error']}[/red]"
        console.print(f"  read {source['kind']} {escape(source['url'])}: {state}")
    for verdict in report.verdicts:
        style = STYLE[verdict.severity]
        console.print(
            f"\n[{style}]{verdict.severity.upper()}[/{style}] [bold]{verdict.component}[/bold]:"
            f" {escape(verdict.message)}",
            soft_wrap=True,
        )
        if verdict.metrics:
            console.print(f"  metric: {', '.join(verdict.metrics)}", soft_wrap=True)
        if verdict.advice:
            console.print(f"  advice: {escape(verdict.advice)}", soft_wrap=True)
        if verdict.runbook:
            console.print(f"  runbook: {verdict.runbook}")
