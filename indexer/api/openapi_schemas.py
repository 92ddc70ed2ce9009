"""The admin API's OpenAPI component schemas, from the models and limits the API enforces."""

from __future__ import annotations

import copy
from typing import Any

from indexer.api.validation import (
    MAX_INT64,
    NAME_PATTERN,
    RPC_URL_MAX_LENGTH,
    RPC_URL_PATTERN,
    UNBOUNDED_INTEGERS,
    BackfillRequest,
)
from indexer.config import ChainConfig, ProviderConfig
from indexer.datasets import DATASETS

NULLABLE_INT = {"type": ["integer", "null"]}
BLOCK = {"type": "integer", "minimum": 0, "maximum": MAX_INT64}


def ref(name: str) -> dict[str, Any]:
    """A reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(item) for item in schema]
    return schema


RPC_URL_DESCRIPTION = (
    "JSON-RPC endpoint, http or https; link-local and cloud metadata addresses only with"
    " `allow_link_local_rpc`. Answers show it as `scheme://host[:port]` only: its path, query"
    " and user-info may carry the provider's key, which no answer returns, with a token or"
    " without. PATCHing the shown value keeps the stored URL."
)


def chain_properties() -> dict[str, Any]:
    """ChainConfig's fields as JSON Schema, with the API's extra bounds."""
    schema = ChainConfig.model_json_schema(ref_template="#/components/schemas/{model}")
    properties: dict[str, Any] = _strip_titles(schema["properties"])
    properties["providers"]["items"] = {"$ref": "#/components/schemas/Provider"}
    properties["name"]["pattern"] = NAME_PATTERN
    properties["name"]["description"] = "Chain name, a slug; `status` is reserved."
    properties["rpc_url"].update(
        pattern=RPC_URL_PATTERN, maxLength=RPC_URL_MAX_LENGTH, description=RPC_URL_DESCRIPTION
    )
    for name in UNBOUNDED_INTEGERS:
        properties[name]["maximum"] = MAX_INT64
    return properties


def provider_schema() -> dict[str, Any]:
    """ProviderConfig as JSON Schema: its URL checked and shown like rpc_url."""
    schema: dict[str, Any] = _strip_titles(ProviderConfig.model_json_schema())
    schema["properties"]["url"].update(
        pattern=RPC_URL_PATTERN, maxLength=RPC_URL_MAX_LENGTH, description=RPC_URL_DESCRIPTION
    )
    schema["additionalProperties"] = False
    return schema


def _object(properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _without_defaults(properties: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(properties)
    for schema in stripped.values():
        schema.pop("default", None)
    return stripped


def schemas() -> dict[str, Any]:
    chain = chain_properties()
    status = {
        "chain": {"type": "string"},
        "head": {**NULLABLE_INT, "description": "Latest available block; null before a scan."},
        "finalized_block": {
            **NULLABLE_INT,
            "description": "The final block at the last reorg check (the chain's finality"
            " knob); null while nothing is final (the default) or before a check.",
        },
        "last_indexed": {**NULLABLE_INT, "description": "Newest indexed block."},
        "is_live_sync": {
            "type": "boolean",
            "description": "The newest indexed block is within live_sync_lag of the head.",
        },
        "indexed_blocks": {"type": "integer", "minimum": 0},
        "missing_blocks_count": {
            "type": "integer",
            "minimum": 0,
            "description": "Blocks from start_block to head not indexed: the backlog.",
        },
        "gap_ranges_count": {"type": "integer", "minimum": 0},
        "largest_gap_start": NULLABLE_INT,
        "largest_gap_end": NULLABLE_INT,
        "historical_progress": {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": 1,
            "description": "Indexed blocks / blocks from start_block to head (head + 1 when 0).",
        },
        "blocks_per_second": {
            "type": ["number", "null"],
            "minimum": 0,
            "description": "Indexing throughput over the last minute; null until measured.",
        },
        "eta_seconds": {
            "type": ["number", "null"],
            "minimum": 0,
            "description": "missing_blocks_count / blocks_per_second; null when unknown.",
        },
        "datasets": {
            "type": "array",
            "items": ref("DatasetStatus"),
            "description": "Each enabled dataset's own progress, blocks first. The counts above"
            " are of blocks stored with every enabled dataset.",
        },
        "providers": {
            "type": "array",
            "items": ref("ProviderStatus"),
            "description": "The chain's providers, their circuit, head and lag.",
        },
    }
    dataset_status = {
        "dataset": {"type": "string", "enum": list(DATASETS)},
        "indexed_blocks": {"type": "integer", "minimum": 0},
        "missing_blocks_count": {
            "type": "integer",
            "minimum": 0,
            "description": "Blocks from start_block to head without this dataset's rows.",
        },
        "gap_ranges_count": {"type": "integer", "minimum": 0},
        "last_indexed": {**NULLABLE_INT, "description": "Newest block with this dataset."},
        "behind_blocks_count": {
            "type": "integer",
            "minimum": 0,
            "description": "Blocks stored without this dataset's rows: a dataset added to an"
            " indexed chain is behind until its backfill is done.",
        },
        "is_caught_up": {
            "type": "boolean",
            "description": "Every stored block has this dataset's rows (behind_blocks_count 0).",
        },
        "blocks_per_second": {
            "type": ["number", "null"],
            "minimum": 0,
            "description": "Blocks gaining this dataset per second over the last minute.",
        },
        "eta_seconds": {
            "type": ["number", "null"],
            "minimum": 0,
            "description": "missing_blocks_count / blocks_per_second; null when unknown.",
        },
    }
    backfill = _strip_titles(BackfillRequest.model_json_schema(by_alias=True))
    return {
        "Error": _object(
            {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
            ["error", "field"],
            "What went wrong, and the request field it is about (null if none).",
        ),
        "Chain": _object(chain, sorted(chain), "A chain and every knob, as stored."),
        "ChainCreate": _object(
            chain,
            ["name"],
            "A new chain with `rpc_url` or `providers` (one of them); knobs left out take their"
            " defaults.",
        ),
        "Provider": provider_schema(),
        "ProviderStatus": _object(
            {
                "name": {"type": "string"},
                "url": {"type": "string", "description": "scheme://host[:port] only."},
                "healthy": {
                    "type": ["boolean", "null"],
                    "description": "false while its circuit is open; null if no worker in"
                    " the API's process has used it (see tindexer_provider_up).",
                },
                "head": NULLABLE_INT,
                "lag_blocks": NULLABLE_INT,
                "chain_id": NULLABLE_INT,
                "problem": {
                    "type": ["string", "null"],
                    "description": "Why it is kept out or demoted, e.g. 'wrong chain id 999,"
                    " expected 1'; null when none.",
                },
            },
            ["name", "url", "healthy", "head", "lag_blocks", "chain_id", "problem"],
            "A provider of the chain as a worker in this process last saw it.",
        ),
        "ChainPatch": _object(
            _without_defaults(chain),
            [],
            "Fields to change; every given field is applied (name cannot change).",
        ),
        "ChainList": _object(
            {"chains": {"type": "array", "items": {"$ref": "#/components/schemas/Chain"}}},
            ["chains"],
            "Every chain, by name.",
        ),
        "ChainStatus": _object(status, sorted(status), "A chain's state from its indexed ranges."),
        "DatasetStatus": _object(
            dataset_status, sorted(dataset_status), "One enabled dataset's progress."
        ),
        "StatusList": _object(
            {"chains": {"type": "array", "items": {"$ref": "#/components/schemas/ChainStatus"}}},
            ["chains"],
            "Every chain's status, by name.",
        ),
        "Gap": _object(
            {"start": BLOCK, "end": BLOCK, "size": {"type": "integer", "minimum": 1}},
            ["start", "end", "size"],
            "Blocks start..end (inclusive) are not indexed.",
        ),
        "GapsPage": _object(
            {
                "chain": {"type": "string"},
                "head": NULLABLE_INT,
                "gaps": {"type": "array", "items": {"$ref": "#/components/schemas/Gap"}},
                "next_after": {
                    **NULLABLE_INT,
                    "description": "Pass as `after` for the next page; null on the last.",
                },
            },
            ["chain", "head", "gaps", "next_after"],
            "A page of gaps, oldest first.",
        ),
        "BackfillRequest": backfill | {"additionalProperties": False},
        "BackfillResult": _object(
            {
                "chain": {"type": "string"},
                "from": BLOCK,
                "to": BLOCK,
                "missing_blocks": {"type": "integer", "minimum": 0},
                "ranges": {"type": "integer", "minimum": 0},
                "mode": {"type": "string", "enum": ["none", "direct", "scheduler"]},
                "started": {"type": "integer", "minimum": 0},
                "workflow_id": {"type": ["string", "null"]},
            },
            ["chain", "from", "to", "missing_blocks", "ranges", "mode", "started", "workflow_id"],
            "What the backfill started: IndexRange workflows directly, or one Scheduler.",
        ),
        "Health": _object({"status": {"type": "string"}}, ["status"], "The process answers."),
        "Ready": _object(
            {
                "status": {"type": "string", "enum": ["ready", "not ready"]},
                "postgres": {"type": "string", "enum": ["ok", "unreachable"]},
                "temporal": {"type": "string", "enum": ["ok", "unreachable", "not serving"]},
            },
            ["status", "postgres", "temporal"],
            "Whether PostgreSQL and Temporal answer; why not is in the server log only.",
        ),
    }
