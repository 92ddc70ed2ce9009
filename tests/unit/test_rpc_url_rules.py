"""Provider URLs (issue 12, item 8): http(s) with a host, never a cloud metadata address unless
allowed, in the config file and the API alike; no refusal repeats the URL (it may hold a key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.api.errors import ApiError
from indexer.api.validation import new_chain, patched_chain
from indexer.config import ChainConfig, ConfigError, load_settings, rpc_url_problem

REFUSED = [
    "http://169.254.169.254/latest/meta-data/iam/KEY",
    "http://169.254.0.1:8545",
    "http://[fe80::1]:8545",
    "http://[fe80::1%25eth0]/",
    "http://[febf::1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://0xa9fea9fe/",
    "http://169.254.43518/",  # a.b.c form
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
]
ALLOWED = [
    "http://127.0.0.1:8545",
    "http://localhost:8545",
    "http://[::1]:8545",
    "http://10.1.2.3:8545",
    "http://192.168.1.10",
    "http://172.16.0.1",
    "http://[fd00::1]:8545",
    "https://eth-mainnet.example/v2/KEY?x=1",
    "http://169.255.0.1",
    "http://node.169.254.169.254.example/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_metadata_and_link_local_addresses_are_refused_unless_allowed(url: str) -> None:
    problem = rpc_url_problem(url)
    assert problem is not None and "link-local" in problem
    assert rpc_url_problem(url, allow_link_local=True) is None


@pytest.mark.parametrize("url", ALLOWED)
def test_loopback_private_and_public_hosts_are_allowed(url: str) -> None:
    assert rpc_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://node/KEY", "must be an http or https URL"),
        ("file:///etc/passwd", "must be an http or https URL"),
        ("http:///KEY", "must name a host"),
        ("http://node:99999/KEY", "must be a valid URL"),
        ("http://[::1/KEY", "must be a valid URL"),
    ],
)
def test_other_schemes_and_broken_urls_are_refused(url: str, problem: str) -> None:
    assert rpc_url_problem(url) == problem


def _toml(tmp_path: Path, url: str, allow: bool) -> Path:
    path = tmp_path / "c.toml"
    head = "allow_link_local_rpc = true\n" if allow else ""
    path.write_text(f'{head}[[chain]]\nname = "main"\nrpc_url = "{url}"\n')
    return path


def test_the_config_file_refuses_a_metadata_url_without_showing_it(tmp_path: Path) -> None:
    url = "http://169.254.169.254/v3/SECRETKEY"
    with pytest.raises(ConfigError) as error:
        load_settings(_toml(tmp_path, url, allow=False))
    message = str(error.value)
    assert "chain 'main': rpc_url must not be a link-local" in message
    assert "SECRETKEY" not in message and "SECRETKEY" not in str(error.value.__cause__)
    assert load_settings(_toml(tmp_path, url, allow=True)).chains[0].rpc_url == url


def test_a_rejected_chain_config_does_not_echo_its_url() -> None:
    with pytest.raises(ValueError) as error:
        ChainConfig(name="main", rpc_url="ws://node/SECRETKEY")
    assert "SECRETKEY" not in str(error.value)


def test_the_api_refuses_them_naming_the_field_not_the_url() -> None:
    url = REFUSED[0]
    with pytest.raises(ApiError) as error:
        new_chain({"name": "main", "rpc_url": url})
    assert (error.value.status, error.value.field) == (400, "rpc_url")
    assert "KEY" not in error.value.error
    assert new_chain({"name": "main", "rpc_url": url}, allow_link_local=True).rpc_url == url
    current = ChainConfig(name="main", rpc_url="http://127.0.0.1:8545")
    with pytest.raises(ApiError) as error:
        patched_chain(current, {"rpc_url": url})
    assert error.value.field == "rpc_url"


def test_a_stored_link_local_url_survives_patches_of_other_fields() -> None:
    """Allowed once and stored: a PATCH that does not send the URL must not trip on it."""
    current = ChainConfig(name="main", rpc_url="http://169.254.10.10:8545/KEY")
    assert patched_chain(current, {"max_replicas": 3}).rpc_url == current.rpc_url
