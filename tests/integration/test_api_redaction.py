"""Issue 12, item 2: no API answer or API log line shows a provider URL's key, to anyone.

A chain is created with keys in its URL's user-info, path and query; every endpoint is then
called with the token and without, and every body (errors included) and every log record of the
run is searched for the keys. The chain's URL is shown as `scheme://host[:port]`; the full URL
stays in the stored config only.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from indexer.public_url import public_url
from indexer.store.chains import set_head
from tests.support.api import ApiClient
from tests.support.harness import Harness

SECRETS = ("USERPASS", "PATHKEY", "QUERYKEY")
KEYED_URL = "http://user:USERPASS@127.0.0.1:9/v3/PATHKEY?apikey=QUERYKEY"
SHOWN = "http://127.0.0.1:9"


def leaks(answer: Any) -> list[str]:
    text = json.dumps(answer)
    return [secret for secret in SECRETS if secret in text]


async def test_no_answer_or_log_line_shows_the_key(
    harness: Harness, api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    name = harness.chain_config(SHOWN).name  # a fresh name, cleaned up with the harness
    answers: list[tuple[str, int, Any]] = []

    async def call(method: str, path: str, body: Any = None, **options: Any) -> tuple[int, Any]:
        status, answer = await api.call(method, path, body, **options)
        answers.append((f"{method} {path} token={options.get('token', 'yes')}", status, answer))
        return status, answer

    status, created = await call("POST", "/chains", {"name": name, "rpc_url": KEYED_URL})
    assert status == 201, created
    assert created["rpc_url"] == SHOWN == public_url(KEYED_URL)
    assert (await harness.chain(name)).config.rpc_url == KEYED_URL  # stored in full

    # Errors about a body that carries the URL: no token, conflict, a bad knob, a refused address.
    assert (await call("POST", "/chains", {"name": "x", "rpc_url": KEYED_URL}, token=None))[
        0
    ] == 401
    assert (await call("POST", "/chains", {"name": name, "rpc_url": KEYED_URL}))[0] == 409
    bad_knob = {"name": "other", "rpc_url": KEYED_URL, "blocks_per_workflow": 0}
    assert (await call("POST", "/chains", bad_knob))[0] == 400
    metadata = {"name": "other", "rpc_url": "http://169.254.169.254/PATHKEY?k=QUERYKEY"}
    assert (await call("POST", "/chains", metadata))[0] == 400
    assert (await call("PATCH", f"/chains/{name}", {"rpc_url": "ftp://x/PATHKEY"}))[0] == 400

    # Reading, editing and sending the chain back keeps the stored key.
    status, shown = await call("GET", f"/chains/{name}")
    assert (status, shown["rpc_url"]) == (200, SHOWN)
    status, patched = await call("PATCH", f"/chains/{name}", {**shown, "max_replicas": 2})
    assert (status, patched["rpc_url"], patched["max_replicas"]) == (200, SHOWN, 2)
    assert (await harness.chain(name)).config.rpc_url == KEYED_URL

    row = await harness.chain(name)
    await set_head(harness.pool, row.id, 50)
    for token in (None, "s3cret-test-token"):
        for path in (
            "/chains",
            f"/chains/{name}",
            "/chains/status",
            f"/chains/{name}/status",
            f"/chains/{name}/gaps",
            "/openapi.json",
            "/readyz",
            "/healthz",
        ):
            status, answer = await call("GET", path, token=token)
            assert status == 200, (path, answer)
    shown_urls = {
        chain["rpc_url"]
        for _, _, answer in answers
        if isinstance(answer, dict)
        for chain in answer.get("chains", [])
        if chain.get("name") == name
    }
    assert shown_urls == {SHOWN}  # GET /chains, with and without the token
    assert (await call("POST", f"/chains/{name}/backfill", {"from": 0, "to": 99}))[0] == 409

    # A new keyed URL is stored in full and shown without its key.
    rotated = "https://user:USERPASS@rpc.example:8443/v3/PATHKEY?apikey=QUERYKEY"
    status, patched = await call("PATCH", f"/chains/{name}", {"rpc_url": rotated})
    assert (status, patched["rpc_url"]) == (200, "https://rpc.example:8443")
    assert (await harness.chain(name)).config.rpc_url == rotated
    assert (await call("DELETE", f"/chains/{name}?confirm={name}"))[0] == 204
    assert (await call("DELETE", f"/chains/{name}?confirm={name}"))[0] == 404

    leaked = [(what, status, answer) for what, status, answer in answers if leaks(answer)]
    assert leaked == [], leaked
    logged = [record.getMessage() for record in caplog.records]
    assert [line for line in logged if any(secret in line for secret in SECRETS)] == []
