"""The OpenAPI description of GET /doctor, kept apart so openapi.py only merges it in."""

from __future__ import annotations

from typing import Any

from indexer.doctor.verdict import SEVERITIES

JSON = "application/json"

DOCTOR_SCHEMAS: dict[str, Any] = {
    "Verdict": {
        "type": "object",
        "description": "One finding: which component, how bad, the evidence and its metric.",
        "properties": {
            "component": {
                "type": "string",
                "description": "temporal-frontend (or another Temporal service),"
                " temporal-client, temporal-server, provider, postgresql, worker-memory or"
                " indexer.",
            },
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "message": {"type": "string"},
            "metric": {"type": "string", "description": "The metric names, comma-separated."},
            "metrics": {"type": "array", "items": {"type": "string"}},
            "evidence": {"type": "object", "description": "The figures the verdict rests on."},
            "advice": {"type": "string"},
            "runbook": {"type": ["string", "null"]},
        },
        "required": [
            "component",
            "severity",
            "message",
            "metric",
            "metrics",
            "evidence",
            "advice",
            "runbook",
        ],
        "additionalProperties": False,
    },
    "DoctorSource": {
        "type": "object",
        "description": "An endpoint the doctor read, and whether it answered both times.",
        "properties": {
            "url": {"type": "string"},
            "kind": {"type": "string", "enum": ["indexer", "temporal"]},
            "ok": {"type": "boolean"},
            "series": {"type": "integer", "minimum": 0},
            "error": {"type": ["string", "null"]},
        },
        "required": ["url", "kind", "ok", "series", "error"],
        "additionalProperties": False,
    },
    "DoctorReport": {
        "type": "object",
        "description": "Which component throttles now, most urgent first.",
        "properties": {
            "verdicts": {"type": "array", "items": {"$ref": "#/components/schemas/Verdict"}},
            "sources": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/DoctorSource"},
            },
            "window_seconds": {"type": "number", "minimum": 0},
        },
        "required": ["verdicts", "sources", "window_seconds"],
        "additionalProperties": False,
    },
}

DOCTOR_PATHS: dict[str, Any] = {
    "/doctor": {
        "get": {
            "operationId": "doctor",
            "summary": "Which component is the bottleneck now, from the live metrics.",
            "description": "Reads the indexer's /metrics endpoints (doctor_metrics_urls) and the"
            " Temporal server's (temporal_metrics_url) and judges what their counters did over"
            " a window of at least 5 s; waits for that window only when no earlier request's"
            " scrape is old enough. The same document as `tindexer doctor --json`.",
            "responses": {
                "200": {
                    "description": "The verdicts and the endpoints read.",
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/DoctorReport"}}},
                }
            },
        }
    }
}
