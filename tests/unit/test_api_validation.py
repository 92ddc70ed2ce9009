"""Request validation and the OpenAPI document, without a server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from indexer.api.auth import generate_token, token_matches
from indexer.api.backfill import MAX_DIRECT_RANGES, count_aligned_ranges, plan_backfill
from indexer.api.errors import ApiError
from indexer.api.hosts import allowed_hosts, host_name
from indexer.api.openapi import DOCUMENT_PATH, build_document
from indexer.api.validation import (
    MAX_INT64,
    NAME_PATTERN,
    BackfillRequest,
    backfill_request,
    gaps_query,
    new_chain,
    patched_chain,
)
from indexer.config import ChainConfig
from indexer.workflows.inputs import Range
from indexer.workflows.ranges import aligned_ranges

CURRENT = ChainConfig(name="main", rpc_url="http://node:8545", min_replicas=1, max_replicas=3)


def rejected(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def test_the_document_covers_every_chain_field_and_every_endpoint() -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    assert set(schemas["Chain"]["properties"]) == set(ChainConfig.model_fields)
    assert schemas["ChainPatch"]["required"] == []
    assert all("default" not in p for p in schemas["ChainPatch"]["properties"].values())
    assert set(document["paths"]) == {
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/chains",
        "/chains/status",
        "/chains/{name}",
        "/chains/{name}/status",
        "/chains/{name}/gaps",
        "/chains/{name}/backfill",
        "/doctor",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "patch", "delete"):
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
                assert "401" in operation["responses"]
    status_fields = set(schemas["ChainStatus"]["required"])
    assert status_fields >= {
        "last_indexed",
        "head",
        "finalized_block",
        "missing_blocks_count",
        "gap_ranges_count",
        "largest_gap_start",
        "largest_gap_end",
        "is_live_sync",
        "indexed_blocks",
        "historical_progress",
        "blocks_per_second",
        "eta_seconds",
    }


def test_patch_applies_every_given_field() -> None:
    change = {"min_replicas": 4, "max_replicas": 9, "blocks_per_workflow": 7, "parallelism": None}
    assert patched_chain(CURRENT, change).model_dump() == {**CURRENT.model_dump(), **change}
    assert patched_chain(CURRENT, {}) == CURRENT
    assert patched_chain(CURRENT, {"name": "main"}) == CURRENT


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min_replicas": 10, "max_replicas": 9}, "min_replicas"),
        ({"max_replicas": 0}, "max_replicas"),
        ({"min_replicas": -1}, "min_replicas"),
        ({"max_replicas": 1_001}, "max_replicas"),
        ({"max_replicas": "9"}, "max_replicas"),
        ({"max_replicas": 9.0}, "max_replicas"),
        ({"max_replicas": False}, "max_replicas"),
        ({"max_replicas": None}, "max_replicas"),
        ({"head_poll_interval_seconds": 0}, "head_poll_interval_seconds"),
        ({"start_block": MAX_INT64 + 1}, "start_block"),
        ({"catchup_threshold": MAX_INT64 + 1}, "catchup_threshold"),
        ({"unknown": 1}, "unknown"),
        ({"name": "renamed"}, "name"),
        ({"rpc_url": "ws://x"}, "rpc_url"),
        ({"rpc_url": "http://" + "a" * 2_100}, "rpc_url"),
        ({"rpc_url": "http://tab\there"}, "rpc_url"),
    ],
)
def test_patch_rejections_name_the_field(body: dict[str, Any], field: str) -> None:
    error = rejected(lambda: patched_chain(CURRENT, body))
    assert (error.status, error.field) == (400, field)


def test_new_chains_take_defaults_and_refuse_reserved_names() -> None:
    config = new_chain({"name": "a-1", "rpc_url": "https://x"})
    assert config == ChainConfig(name="a-1", rpc_url="https://x")
    assert rejected(lambda: new_chain({"name": "status", "rpc_url": "http://x"})).field == "name"
    assert rejected(lambda: new_chain({"rpc_url": "http://x"})).field == "name"
    assert rejected(lambda: new_chain({"name": "Upper", "rpc_url": "http://x"})).field == "name"


def test_name_pattern_matches_config_but_reserves_status() -> None:
    config_pattern = ChainConfig.model_json_schema()["properties"]["name"]["pattern"]
    for name in ("a", "main-net", "x_1", "status2", "statu", "9"):
        assert re.fullmatch(NAME_PATTERN, name) and re.fullmatch(config_pattern, name)
    assert not re.fullmatch(NAME_PATTERN, "status")
    assert not re.fullmatch(NAME_PATTERN, "-a")


def test_backfill_body() -> None:
    assert backfill_request({"from": 3, "to": 3}) == BackfillRequest(**{"from": 3, "to": 3})
    for body, field in (
        ({"from": 4, "to": 3}, "from"),
        ({"from": -1, "to": 3}, "from"),
        ({"from": 1}, "to"),
        ({"from": 1, "to": 2, "extra": 0}, "extra"),
        ({"from": True, "to": 2}, "from"),
    ):
        assert rejected(lambda body=body: backfill_request(body)).field == field


def test_gaps_query() -> None:
    assert gaps_query({}) == (100, None)
    assert gaps_query({"limit": "5", "after": "77"}) == (5, 77)
    for query in ({"limit": "0"}, {"limit": "1001"}, {"limit": "-1"}, {"after": "1e3"}):
        assert rejected(lambda query=query: gaps_query(query)).status == 400


def test_backfill_plans_direct_small_and_scheduler_big() -> None:
    wanted = BackfillRequest(**{"from": 0, "to": 999})
    gaps = [Range(5, 120), Range(300, 301)]
    assert count_aligned_ranges(gaps, 50) == len(list(aligned_ranges(gaps, 50))) == 4
    assert plan_backfill("c", wanted, gaps, 50, direct_limit=64).mode == "direct"
    big = plan_backfill("c", wanted, gaps, 1, direct_limit=64)
    assert (big.mode, big.range_count, big.scheduler_id) == ("scheduler", 118, "backfill:c:0-999")
    assert plan_backfill("c", wanted, [], 1, 64).mode == "none"
    huge_limit = plan_backfill("c", wanted, [Range(0, 999)], 1, direct_limit=100_000)
    assert huge_limit.mode == "scheduler" and huge_limit.range_count > MAX_DIRECT_RANGES


def test_token_comparison() -> None:
    token = generate_token()
    assert len(token) >= 40 and token != generate_token()
    assert token_matches(token, token.encode())
    assert not token_matches(token, None)
    assert not token_matches(token, token[:-1].encode())
    assert not token_matches(token, (token + "x").encode())
    assert not token_matches(token, "\udcff".encode("utf-8", "surrogateescape"))


def test_document_is_valid_json_with_sorted_keys() -> None:
    text = DOCUMENT_PATH.read_text()
    assert json.loads(text)["openapi"] == "3.1.0"
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_deleting_needs_the_name_again_and_reads_document_their_503() -> None:
    paths = build_document()["paths"]
    delete = paths["/chains/{name}"]["delete"]
    assert [(p["name"], p["in"], p["required"]) for p in delete["parameters"]] == [
        ("confirm", "query", True)
    ]
    assert "400" in delete["responses"]
    for path in ("/chains", "/chains/status", "/chains/{name}/status", "/chains/{name}/gaps"):
        assert "503" in paths[path]["get"]["responses"], path
    shown = build_document()["components"]["schemas"]["Chain"]["properties"]["rpc_url"]
    assert "scheme://host[:port]" in shown["description"]


def test_a_patch_sending_the_shown_url_back_keeps_the_stored_key() -> None:
    current = ChainConfig(name="main", rpc_url="https://node.example/v3/KEY")
    assert patched_chain(current, {"rpc_url": "https://node.example"}) == current
    edited = patched_chain(current, {"rpc_url": "https://node.example", "max_replicas": 4})
    assert (edited.rpc_url, edited.max_replicas) == (current.rpc_url, 4)
    changed = patched_chain(current, {"rpc_url": "https://other.example/v3/NEW"})
    assert changed.rpc_url == "https://other.example/v3/NEW"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8088", "127.0.0.1"),
        ("LocalHost.", "localhost"),
        ("[::1]:8088", "::1"),
        ("::1", "::1"),
        ("api.example", "api.example"),
        ("", ""),
    ],
)
def test_host_names_from_headers(header: str, name: str) -> None:
    assert host_name(header) == name


def test_allowed_hosts_default_to_the_bind_address_and_localhost() -> None:
    local = {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts("127.0.0.1", None) == local
    assert allowed_hosts("10.0.0.5", None) == local | {"10.0.0.5"}
    assert allowed_hosts("0.0.0.0", None) == local  # every interface: names must be configured
    assert allowed_hosts("0.0.0.0", ["API.example.", "*"]) == {"api.example", "*"}
