"""Verdicts on Temporal: the server's RESOURCE_EXHAUSTED by service, cause and scope, or the SDK's.

The server counts every call it refuses in `service_errors_resource_exhausted{service_name,
operation,namespace,resource_exhausted_cause,resource_exhausted_scope}`, created on the first
refusal. Server 1.32 (the shipped dev server) spells the cause `RpsLimit` and the scope
`Namespace`; older servers wrote the proto enum names (`RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT`,
`RESOURCE_EXHAUSTED_SCOPE_NAMESPACE`). Both read as the short form here.
"""

from __future__ import annotations

import re
from collections import defaultdict

from indexer.doctor.scrape import Change, label, total
from indexer.doctor.verdict import WARNING, Verdict, figure, per_second, runbook

SERVER_REJECTIONS = "service_errors_resource_exhausted"
SDK_FAILURES = ("temporal_request_failure", "temporal_long_request_failure")
RATE_LIMITED = "tindexer_rate_limited_total"  # source="temporal": every refusal the indexer saw
REQUEST_ERRORS = "tindexer_temporal_request_errors_total"  # the scheduler's, by operation
# Any refused call in the window is a verdict: the server said no, whatever the count. The SDK
# retries the refusal, so nothing is lost, but every retry is a start that did not happen.
MIN_REJECTIONS = 1

# What to change for each cause (and scope, where it decides which limit it was).
ADVICE = {
    ("RpsLimit", "Namespace"): "raise frontend.namespaceRPS (and frontend.namespaceBurstRatio) in"
    " the server's dynamic config, or start fewer workflows per second: a larger"
    " blocks_per_workflow, a smaller parallelism or scheduler_batch_size",
    ("RpsLimit", "System"): "raise frontend.rps (each frontend host's own limit) or add frontend"
    " hosts",
    ("ConcurrentLimit", ""): "raise frontend.namespaceCount (concurrent long polls per namespace)"
    " or run fewer pollers (`tindexer worker --pollers`)",
    ("PersistenceLimit", ""): "raise frontend.persistenceMaxQPS / history.persistenceMaxQPS, or"
    " give the server's database more capacity",
    ("SystemOverloaded", ""): "the server itself is overloaded: give it more CPU or hosts",
    ("BusyWorkflow", ""): "one workflow receives more updates or signals than it can take:"
    " spread them over more workflows",
    ("ApsLimit", ""): "raise the namespace's actions-per-second limit",
}
DEFAULT_ADVICE = "find the limit behind this cause in the server's dynamic config and raise it"


def _camel(enum_value: str, prefix: str) -> str:
    """`RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT` -> `RpsLimit`; `RpsLimit` stays as it is."""
    if not re.fullmatch(r"[A-Z0-9_]+", enum_value):
        return enum_value
    words = enum_value.removeprefix(prefix).split("_")
    return "".join(word.capitalize() for word in words if word)


def cause_name(value: str) -> str:
    return _camel(value, "RESOURCE_EXHAUSTED_CAUSE_")


def scope_name(value: str) -> str:
    return _camel(value, "RESOURCE_EXHAUSTED_SCOPE_")


def advice_for(cause: str, scope: str) -> str:
    return ADVICE.get((cause, scope)) or ADVICE.get((cause, ""), DEFAULT_ADVICE)


def server_rejections(server: Change) -> list[Verdict]:
    """One verdict per (service, namespace, cause, scope) that refused calls in the window."""
    groups: dict[tuple[str, str, str, str], dict[str, float]] = defaultdict(dict)
    for labels, count in server.increase(total(SERVER_REJECTIONS)).items():
        if count <= 0:
            continue
        key = (
            label(labels, "service_name") or "server",
            label(labels, "namespace"),
            cause_name(label(labels, "resource_exhausted_cause")),
            scope_name(label(labels, "resource_exhausted_scope")),
        )
        operation = label(labels, "operation") or "unknown"
        groups[key][operation] = groups[key].get(operation, 0.0) + count
    verdicts = []
    for (service, namespace, cause, scope), operations in groups.items():
        rejected = sum(operations.values())
        if rejected < MIN_REJECTIONS:
            continue
        ordered = dict(sorted(operations.items(), key=lambda item: (-item[1], item[0])))
        rate = per_second(rejected, server.seconds)
        named = ", ".join(
            f"{op} ({figure(per_second(n, server.seconds))}/s)" for op, n in ordered.items()
        )
        advice = advice_for(cause, scope)
        message = (
            f"Temporal {service} is rejecting {named}: RESOURCE_EXHAUSTED cause {cause},"
            f" scope {scope.lower() or 'unknown'}, namespace {namespace or 'unknown'},"
            f" {figure(rate)}/s over the last {server.seconds:.0f} s — {advice}"
        )
        verdicts.append(
            Verdict(
                component=f"temporal-{service}",
                severity=WARNING,
                message=message,
                metrics=[SERVER_REJECTIONS],
                evidence={
                    "service": service,
                    "namespace": namespace,
                    "cause": cause,
                    "scope": scope,
                    "operations": {op: int(n) for op, n in ordered.items()},
                    "rejected": int(rejected),
                    "per_second": round(rate, 3),
                    "window_seconds": round(server.seconds, 3),
                },
                advice=advice,
                runbook=runbook("TindexerTemporalRateLimited"),
            )
        )
    return sorted(verdicts, key=lambda v: -v.evidence["rejected"])


def client_rejections(indexer: list[Change], server_seen: bool) -> list[Verdict]:
    """RESOURCE_EXHAUSTED as the indexer saw it, summed over its processes.

    `tindexer_rate_limited_total{source="temporal"}` counts every refusal: the scheduler's own
    fail-fast starts and what the SDK reports; the operations come from the two behind it. (The
    SDK 1.x measured here retries refused calls itself and reports no failure for them, so the
    scheduler's count is usually all there is.)
    """
    refused = 0.0
    operations: dict[str, float] = defaultdict(float)
    for change in indexer:
        refused += sum(change.increase(total(RATE_LIMITED), source="temporal").values())
        for labels, count in change.increase(total(REQUEST_ERRORS)).items():
            if label(labels, "status") == "resource_exhausted" and count > 0:
                operations[label(labels, "operation")] += count
        for name in SDK_FAILURES:
            for labels, count in change.increase(total(name)).items():
                if label(labels, "status_code") == "RESOURCE_EXHAUSTED" and count > 0:
                    operations[label(labels, "operation")] += count
    if refused < MIN_REJECTIONS:
        return []
    seconds = max(change.seconds for change in indexer)
    rate = per_second(refused, seconds)
    ordered = dict(sorted(operations.items(), key=lambda item: (-item[1], item[0])))
    why = (
        "its metrics show no refusal for the same window: is temporal_metrics_url this server's?"
        if server_seen
        else "the server's metrics are not visible, so which limit refused is unknown: set"
        " temporal_metrics_url (TINDEXER_TEMPORAL_METRICS_URL)"
    )
    named = ", ".join(f"{op or 'unknown'} ({int(n)})" for op, n in ordered.items())
    message = (
        f"Temporal refuses the indexer's calls with RESOURCE_EXHAUSTED: {int(refused)} over the"
        f" last {seconds:.0f} s ({figure(rate)}/s{'; ' + named if named else ''}); {why}"
    )
    return [
        Verdict(
            component="temporal-client",
            severity=WARNING,
            message=message,
            metrics=[RATE_LIMITED, REQUEST_ERRORS, *SDK_FAILURES],
            evidence={
                "operations": {op: int(n) for op, n in ordered.items()},
                "rejected": int(refused),
                "per_second": round(rate, 3),
                "window_seconds": round(seconds, 3),
            },
            advice="raise the namespace's limits (frontend.namespaceRPS) or start fewer"
            " workflows per second",
            runbook=runbook("TindexerTemporalRateLimited"),
        )
    ]
