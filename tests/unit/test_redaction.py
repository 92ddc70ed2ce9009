"""Redactor's rules: every secret of a provider URL is hidden however short it is, a long one
wherever it appears, a short one where it stands on its own; an API version and the names of
query parameters stay readable."""

from __future__ import annotations

import pytest

from indexer.chain.redaction import Redactor, url_secrets

# (provider URL, text a provider or aiohttp wrote, what may be shown of it)
CASES = {
    "short path key echoed in the URL": (
        "https://eth.example/v2/abc",
        "502 Bad Gateway: upstream of https://eth.example/v2/abc is down",
        "502 Bad Gateway: upstream of https://eth.example/v2/*** is down",
    ),
    "short path key on its own": (
        "https://eth.example/v2/abc",
        "api key abc is not allowed; abcd, xabc and abc_1 are other words",
        "api key *** is not allowed; abcd, xabc and abc_1 are other words",
    ),
    "short query key echoed in the URL": (
        "https://eth.example/rpc?key=k1",
        "Cannot connect to https://eth.example/rpc?key=k1&x=2",
        "Cannot connect to https://eth.example/***?key=***&x=2",
    ),
    "short query key in a JSON-RPC error": (
        "https://eth.example/?key=k1",
        'key "k1" exceeded its daily limit (k1).',
        'key "***" exceeded its daily limit (***).',
    ),
    "short query key upper-cased and percent-escaped": (
        "https://eth.example/?key=k1",
        "path%2Fk1%2F and K1",
        "path%2F***%2F and ***",
    ),
    "a parameter without a value is the key": (
        "https://eth.example/?ab",
        "unknown project ab",
        "unknown project ***",
    ),
    "short user-info": (
        "https://me:pw@eth.example/",
        "auth failed for me:pw",
        "auth failed for ***:***",
    ),
    "short fragment": (
        "https://eth.example/#f1",
        "https://eth.example/#f1 refused",
        "https://eth.example/#*** refused",
    ),
    "long key inside a longer word": (
        "https://eth.example/v3/0123456789abcdef?apikey=fedcba9876543210",
        "x0123456789abcdefx apikey=fedcba9876543210 /v3/0123456789ABCDEF",
        "x***x apikey=*** /v3/***",
    ),
}


@pytest.mark.parametrize(("url", "text", "shown"), CASES.values(), ids=CASES.keys())
def test_every_secret_is_hidden_and_the_rest_kept(url: str, text: str, shown: str) -> None:
    assert Redactor(url).scrub(text) == shown


def test_short_pieces_of_the_url_are_secrets_but_a_version_and_parameter_names() -> None:
    assert url_secrets("https://eth.example/v2/abc") == {"abc"}
    assert url_secrets("https://eth.example/rpc?key=k1") == {"rpc", "k1"}
    pieces = {"u", "p", "a", "b", "d", "f", "g"}
    # parse_qsl splits on "&" only: "d;e=f" is c's value to it, and hidden as well
    assert url_secrets("https://u:p@eth.example/V10/a?b&c=d;e=f#g") == pieces | {"d;e=f"}


def test_a_url_without_secrets_hides_nothing() -> None:
    redactor = Redactor("https://eth.example:8545/v3")
    assert url_secrets("https://eth.example:8545/v3") == set()
    assert redactor.scrub("v3 of https://eth.example:8545/v3 is down") == (
        "v3 of https://eth.example:8545/v3 is down"
    )
