"""Providers through the admin API: created, read with every URL redacted, patched, validated,
and listed in the chain's status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.api import ApiClient
from tests.support.harness import Harness

ALCHEMY = "https://eth.example/v2/PATHKEY0123?apikey=QUERYKEY01"
OWN = "http://user:USERPASS01@127.0.0.1:9/rpc"
SECRETS = ("PATHKEY0123", "QUERYKEY01", "USERPASS01")


def providers(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": "alchemy", "url": ALCHEMY, "max_requests_per_second": 25},
        {"name": "own-node", "url": OWN, "weight": 2},
        *extra,
    ]


def no_secret_in(answer: Any) -> bool:
    return not any(secret in json.dumps(answer) for secret in SECRETS)


async def test_a_chain_with_two_providers_round_trips_with_its_keys_kept(
    harness: Harness, api: ApiClient
) -> None:
    name = harness.chain_config("http://x").name  # a fresh name, cleaned up with the harness
    status, created = await api.call("POST", "/chains", {"name": name, "providers": providers()})
    assert status == 201, created
    assert created["rpc_url"] is None
    assert [(p["name"], p["url"]) for p in created["providers"]] == [
        ("alchemy", "https://eth.example"),
        ("own-node", "http://127.0.0.1:9"),
    ]
    assert created["providers"][0]["max_requests_per_second"] == 25
    stored = (await harness.chain(name)).config
    assert [p.url for p in stored.providers] == [ALCHEMY, OWN]  # in full, only there

    for token in ("yes", None):
        options = {} if token else {"token": None}
        status, shown = await api.call("GET", f"/chains/{name}", **options)
        assert status == 200 and no_secret_in(shown), shown
        status, listed = await api.call("GET", "/chains", **options)
        assert status == 200 and no_secret_in(listed)

    # Read, edit, send back: the shown URLs keep the stored ones, a new provider is added.
    _, shown = await api.call("GET", f"/chains/{name}")
    edited = [*shown["providers"], {"name": "backup", "url": "https://backup.example/KEY9"}]
    edited[1]["weight"] = 3
    status, patched = await api.call("PATCH", f"/chains/{name}", {"providers": edited})
    assert status == 200, patched
    assert no_secret_in(patched)
    stored = (await harness.chain(name)).config
    assert [(p.name, p.url, p.weight) for p in stored.providers] == [
        ("alchemy", ALCHEMY, 1),
        ("own-node", OWN, 3),
        ("backup", "https://backup.example/KEY9", 1),
    ]

    # rpc_url replaces the providers, and providers replace rpc_url.
    status, patched = await api.call("PATCH", f"/chains/{name}", {"rpc_url": "http://one:1/K"})
    assert (status, patched["rpc_url"], patched["providers"]) == (200, "http://one:1", [])
    status, patched = await api.call("PATCH", f"/chains/{name}", {"providers": providers()})
    assert (status, patched["rpc_url"], len(patched["providers"])) == (200, None, 2)

    status, document = await api.call("GET", f"/chains/{name}/status")
    assert status == 200, document
    assert [(p["name"], p["url"]) for p in document["providers"]] == [
        ("alchemy", "https://eth.example"),
        ("own-node", "http://127.0.0.1:9"),
    ]
    assert no_secret_in(document)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, None, "a chain needs rpc_url or at least one provider"),
        ({"rpc_url": "http://x", "providers": providers()}, None, "not both"),
        ({"providers": providers({"name": "alchemy", "url": "http://z"})}, None, "unique"),
        ({"providers": [{"name": "a", "url": "ftp://PATHKEY0123"}]}, "providers[0].url", "http"),
        (
            {"providers": [{"name": "a", "url": "http://169.254.169.254/PATHKEY0123"}]},
            "providers[0].url",
            "link-local",
        ),
        ({"providers": [{"name": "Bad name", "url": "http://y"}]}, "providers", "pattern"),
        ({"providers": [{"name": "a", "url": "http://y", "weight": 0}]}, "providers", "greater"),
        ({"providers": [{"name": "a", "url": "http://y", "bogus": 1}]}, "providers", "unknown"),
    ],
)
async def test_bad_providers_are_a_400_naming_the_field(
    harness: Harness, api: ApiClient, body: dict[str, Any], field: str | None, words: str
) -> None:
    name = harness.chain_config("http://x").name
    status, error = await api.call("POST", "/chains", {"name": name, **body})
    assert status == 400, error
    assert words in error["error"], error
    if field is not None:
        assert error["field"] == field, error
    assert no_secret_in(error)
