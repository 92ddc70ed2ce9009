"""Provider URLs are shown as scheme://host[:port] only."""

from __future__ import annotations

import pytest

from indexer.public_url import public_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://mainnet.infura.io/v3/0123456789abcdef", "https://mainnet.infura.io"),
        ("https://rpc.example:8443/?apikey=SECRET#x", "https://rpc.example:8443"),
        ("https://user:SECRET@rpc.example/path", "https://rpc.example"),
        ("http://[::1]:8545/SECRET", "http://[::1]:8545"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://rpc.example:notaport/SECRET", "<invalid url>"),
    ],
)
def test_only_scheme_host_and_port_are_shown(url: str, shown: str) -> None:
    assert public_url(url) == shown
    assert "SECRET" not in public_url(url)
