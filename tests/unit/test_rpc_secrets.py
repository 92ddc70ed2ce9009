"""A provider's API key never leaves the RPC client: not in an exception, a log line or a label.

Each failure a provider can cause is provoked for real, against a URL with a key in its path and
another in its query: through the proxy (error pages and JSON-RPC errors that echo the URL, a
429, a slow answer, garbage), a closed port, a port that never accepts, an invalid URL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from collections.abc import Callable, Iterator

import pytest

from indexer.embedded import free_port
from tests.support.provider_proxy import KEY_PATH, raw_answer
from tests.support.proxied_chain import PATH_KEY, QUERY_KEY, Provider

SECRETS = (PATH_KEY, QUERY_KEY)


def texts_of(error: BaseException) -> list[str]:
    """str and repr of an exception and of everything chained to it (cause and context)."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current)]
        pending += [current.__cause__, current.__context__]
    return texts


@contextlib.contextmanager
def never_accepting() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection hangs until the client gives up.

    With a backlog of 0 Linux queues one connection; SYNs past it are dropped, not refused.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(2)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


def echoing_error_page(provider: Provider) -> None:
    body = f"<html>502 Bad Gateway: upstream of {provider.url} is down</html>".encode()
    provider.proxy.answer = raw_answer(body, status=500)


def echoing_429(provider: Provider) -> None:
    body = f"too many requests for key {PATH_KEY}".encode()
    provider.proxy.answer = raw_answer(body, status=429, headers={"Retry-After": "0"})


def echoing_rpc_error(provider: Provider) -> None:
    error = {"code": -32000, "message": f"key {QUERY_KEY} is not allowed on {provider.url}"}
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    provider.proxy.answer = raw_answer(body)


def echoing_rpc_rate_limit(provider: Provider) -> None:
    error = {"code": -32005, "message": f"daily limit of {PATH_KEY} reached"}
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    provider.proxy.answer = raw_answer(body)


def echoing_garbage(provider: Provider) -> None:
    provider.proxy.answer = raw_answer(f"<html>you asked {provider.url}".encode())


def slow(provider: Provider) -> None:
    provider.proxy.delay_seconds = 2  # the client gives up after 0.5 s


# failure -> (set up the proxy, the URL to use instead of the proxy's, what the error says)
Setup = Callable[[Provider], None]
FAILURES: dict[str, tuple[Setup | None, str | None, str]] = {
    "HTTP 500 echoing the URL": (echoing_error_page, None, "HTTP 500"),
    "HTTP 429 echoing the key": (echoing_429, None, "HTTP 429"),
    "JSON-RPC error echoing both": (echoing_rpc_error, None, "JSON-RPC error -32000"),
    "JSON-RPC rate limit echoing the key": (echoing_rpc_rate_limit, None, "code -32005"),
    "malformed JSON echoing the URL": (echoing_garbage, None, "malformed JSON"),
    "read timeout": (slow, None, "within 0.5s"),
    "connection refused": (None, "http://127.0.0.1:{closed}", "Cannot connect"),
    "connect timeout": (None, "http://127.0.0.1:{hanging}", "within 0.5s"),
    "invalid URL": (None, "http://127.0.0.1:99999", "InvalidUrlClientError"),
}


@pytest.mark.parametrize(("setup", "base", "says"), FAILURES.values(), ids=FAILURES.keys())
async def test_no_failure_shows_the_key(
    provider: Provider,
    caplog: pytest.LogCaptureFixture,
    setup: Setup | None,
    base: str | None,
    says: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    if setup is not None:
        setup(provider)
    with never_accepting() as hanging:
        url = None
        if base is not None:
            host = base.format(closed=free_port(), hanging=hanging)
            url = f"{host}{KEY_PATH}?apikey={QUERY_KEY}"
        client = provider.client(url, timeout_seconds=0.5, max_retries=1)
        with pytest.raises(Exception) as failure:
            await client.get_blocks(1, 3)

    texts = texts_of(failure.value)
    assert says in texts[0], texts[0]  # the failure we meant, told clearly
    logged = [
        text
        for record in caplog.records
        for text in (record.getMessage(), record.exc_text or "", repr(record.__dict__))
    ]
    labels = [
        value
        for family in provider.metrics.registry.collect()
        for sample in family.samples
        for value in sample.labels.values()
    ]
    assert labels, "no metric was recorded: the check below would prove nothing"
    for secret in SECRETS:
        assert not [text for text in texts if secret in text], texts
        assert not [text for text in logged if secret in text], logged
        assert secret not in labels


async def test_an_echoed_key_is_hidden_and_the_rest_of_the_message_kept(
    provider: Provider,
) -> None:
    echoing_error_page(provider)
    client = provider.client(max_retries=0)
    with pytest.raises(Exception) as failure:
        await client.get_blocks(1, 1)
    message = str(failure.value)
    assert f"HTTP 500 from {provider.proxy.url.split('/v3/')[0]}:" in message
    assert "502 Bad Gateway: upstream of http://127.0.0.1:" in message
    assert "/v3/***?" in message and "is down" in message


SHORT_KEYS = re.compile(r"(?<![A-Za-z0-9_-])(abc|k1)(?![A-Za-z0-9_-])", re.IGNORECASE)


async def test_short_keys_are_hidden_too(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    """A key of two or three characters is a key: echoed back in an error page (in the URL)
    and in a JSON-RPC error (alone), it is hidden like a long one; the route's version and the
    parameter's name stay readable."""
    caplog.set_level(logging.DEBUG)
    provider.proxy.path = "/v2/abc"  # the proxy serves only its key's path
    url = f"http://127.0.0.1:{provider.proxy.port}/v2/abc?key=k1"
    page = f"<html>502 Bad Gateway: upstream of {url} is down</html>".encode()
    error = {"code": -32000, "message": "key k1 is not allowed on this plan (abc)"}
    answers = {
        "HTTP 500": raw_answer(page, status=500),
        "JSON-RPC error -32000": raw_answer(
            json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
        ),
    }
    messages = []
    for says, answer in answers.items():
        provider.proxy.answer = answer
        with pytest.raises(Exception) as failure:
            await provider.client(url, max_retries=0).get_blocks(1, 1)
        texts = texts_of(failure.value)
        assert says in texts[0], texts[0]
        assert not [text for text in texts if SHORT_KEYS.search(text)], texts
        messages.append(texts[0])
    assert "/v2/***?key=*** is down" in messages[0], messages[0]
    assert "key *** is not allowed on this plan (***)" in messages[1], messages[1]
    logged = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    assert not [text for text in logged if SHORT_KEYS.search(text)], logged
