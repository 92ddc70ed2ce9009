"""OpenTelemetry tracing, configured from the standard OTEL_* environment variables.

OTEL_TRACES_EXPORTER picks the exporter: `otlp` (OTLP over HTTP, to
OTEL_EXPORTER_OTLP_ENDPOINT), `console`, or `none`. Unset, it is `otlp` when an OTLP endpoint is
set and `none` otherwise. Sampling and resource attributes follow OTEL_TRACES_SAMPLER and
OTEL_RESOURCE_ATTRIBUTES as the SDK reads them.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from temporalio.contrib.opentelemetry import TracingInterceptor

TRACER_NAME = "tindexer"


def exporter_from_environment() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER")
    if choice is None:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        choice = "otlp" if any(os.environ.get(e) for e in endpoints) else "none"
    if choice == "none":
        return None
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={choice!r}: expected otlp, console or none")


def configure_tracing(service: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the global tracer provider once; `exporter` overrides the environment (tests)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
        provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(provider)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        configured = exporter_from_environment()
        if configured is not None:
            provider.add_span_processor(BatchSpanProcessor(configured))
    return provider


def temporal_interceptor() -> TracingInterceptor:
    """One trace from a client call through workflows (even timer-started ones) to activities."""
    return TracingInterceptor(always_create_workflow_spans=True)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_trace_id() -> str | None:
    """The current span's trace ID in hex, for exemplars and log lines."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
