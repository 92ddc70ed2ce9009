"""The admin API's OpenAPI 3.1 document, built from the same models and limits the API enforces.

Its paths are here, its component schemas in `openapi_schemas.py`.

`make generate` (or `python -m indexer.api.openapi`) rewrites the committed
`indexer/api/openapi.json`; a unit test fails when the two differ, so the document in the
repository is always the one served.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from indexer.api.openapi_doctor import DOCTOR_PATHS, DOCTOR_SCHEMAS
from indexer.api.openapi_schemas import BLOCK, ref, schemas
from indexer.api.validation import (
    GAPS_DEFAULT_LIMIT,
    GAPS_MAX_LIMIT,
    MAX_BODY_BYTES,
    NAME_PATTERN,
)

DOCUMENT_PATH = Path(__file__).with_name("openapi.json")
JSON = "application/json"


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


ERRORS = {
    "400": "Invalid request; `field` names the offending field.",
    "401": "Missing or wrong bearer token.",
    "404": "No chain of that name.",
    "409": "Conflicts with the current state.",
    "413": f"Body larger than {MAX_BODY_BYTES} bytes.",
    "415": "Body is not application/json.",
    "503": "PostgreSQL or Temporal is unavailable or busy; retry later.",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _json(ERRORS[code], "Error") for code in codes}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref(schema)}}}


NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": NAME_PATTERN},
    "example": "mainnet",
}
CONFIRM_PARAMETER = {
    "name": "confirm",
    "in": "query",
    "required": True,
    "description": "The chain's name again, so a deletion is never an accident.",
    "schema": {"type": "string"},
    "example": "mainnet",
}
SECURED: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def paths() -> dict[str, Any]:
    mutating = ("401", "413", "415")
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process answers.",
                "responses": {"200": _json("Alive.", "Health")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: PostgreSQL and Temporal answer within 2 s.",
                "responses": {
                    "200": _json("Ready.", "Ready"),
                    "503": _json("Not ready; says which is down.", "Ready"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/chains": {
            "get": {
                "operationId": "listChains",
                "summary": "Every chain and its configuration.",
                "responses": {"200": _json("The chains.", "ChainList"), **_errors("503")},
            },
            "post": {
                "operationId": "createChain",
                "summary": "Add a chain and start indexing it.",
                "security": SECURED,
                "requestBody": _body("ChainCreate"),
                "responses": {
                    "201": {
                        **_json("Created.", "Chain"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    **_errors("400", *mutating, "409"),
                },
            },
        },
        "/chains/status": {
            "get": {
                "operationId": "chainsStatus",
                "summary": "Every chain's status, computed concurrently.",
                "responses": {"200": _json("Statuses.", "StatusList"), **_errors("503")},
            }
        },
        "/chains/{name}": {
            "parameters": [NAME_PARAMETER],
            "get": {
                "operationId": "getChain",
                "summary": "One chain's configuration.",
                "responses": {"200": _json("The chain.", "Chain"), **_errors("404", "503")},
            },
            "patch": {
                "operationId": "patchChain",
                "summary": "Change any fields, min_replicas and max_replicas included.",
                "description": "Takes effect in running workers, the scheduler and the"
                " autoscaler within one reconcile interval, without a restart.",
                "security": SECURED,
                "requestBody": _body("ChainPatch"),
                "responses": {
                    "200": _json("The chain as changed.", "Chain"),
                    **_errors("400", *mutating, "404"),
                },
            },
            "delete": {
                "operationId": "deleteChain",
                "summary": "Delete a chain and everything indexed for it.",
                "description": "The chain disappears at once (its name can be reused) and its"
                " workflows are terminated; its rows are then purged in the background, a batch"
                " of blocks per transaction.",
                "security": SECURED,
                "parameters": [CONFIRM_PARAMETER],
                "responses": {"204": {"description": "Deleted."}, **_errors("400", "401", "404")},
            },
        },
        "/chains/{name}/status": {
            "parameters": [NAME_PARAMETER],
            "get": {
                "operationId": "chainStatus",
                "summary": "One chain's status: live sync and backlog side by side.",
                "responses": {
                    "200": _json("The status.", "ChainStatus"),
                    **_errors("404", "503"),
                },
            },
        },
        "/chains/{name}/gaps": {
            "parameters": [NAME_PARAMETER],
            "get": {
                "operationId": "chainGaps",
                "summary": "Missing block ranges, oldest first, a page at a time.",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": GAPS_MAX_LIMIT,
                            "default": GAPS_DEFAULT_LIMIT,
                        },
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "description": "Only gaps starting after this block (`next_after`).",
                        "schema": BLOCK,
                    },
                ],
                "responses": {
                    "200": _json("A page.", "GapsPage"),
                    **_errors("400", "404", "503"),
                },
            },
        },
        "/chains/{name}/backfill": {
            "parameters": [NAME_PARAMETER],
            "post": {
                "operationId": "backfill",
                "summary": "Index the missing blocks of from..to (up to the head).",
                "security": SECURED,
                "requestBody": _body("BackfillRequest"),
                "responses": {
                    "202": _json("Started.", "BackfillResult"),
                    **_errors("400", *mutating, "404", "409", "503"),
                },
            },
        },
    }


def build_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Temporal Indexer admin API",
            "version": "1.0.0",
            "description": "Chains, their configuration and status. Mutating requests need"
            " `Authorization: Bearer <token>` (TINDEXER_API_TOKEN). A request whose `Host` is not"
            " a name the API is served under (`api_allowed_hosts`; default its bind address and"
            " localhost) gets 421, except the probes /healthz and /readyz.",
        },
        "paths": {**paths(), **DOCTOR_PATHS},
        "components": {
            "schemas": {**schemas(), **DOCTOR_SCHEMAS},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(path: Path = DOCUMENT_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path


def main() -> None:
    """Write the document next to this module (or to the path given)."""
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCUMENT_PATH)


if __name__ == "__main__":
    main()
