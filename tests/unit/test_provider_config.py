"""Providers in the config: the issue's example is a complete chain; rpc_url is one provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.activities.chain_cache import chain_fetcher, provider_settings
from indexer.config import ChainConfig, ConfigError, ProviderConfig, load_settings

TWO_PROVIDERS = """
[[chain]]
name = "mainnet"
[[chain.provider]]
name = "alchemy"
url = "https://eth.example/v2/KEY0123456789"
max_requests_per_second = 25
[[chain.provider]]
name = "own-node"
url = "http://10.0.0.5:8545"
weight = 2
unsupported_methods = ["eth_getBlockReceipts"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_the_issues_two_provider_example_is_a_complete_chain(tmp_path: Path) -> None:
    (chain,) = load_settings(write(tmp_path, TWO_PROVIDERS)).chains
    assert chain.rpc_url is None
    assert [(p.name, p.url) for p in chain.effective_providers()] == [
        ("alchemy", "https://eth.example/v2/KEY0123456789"),
        ("own-node", "http://10.0.0.5:8545"),
    ]
    alchemy, own = chain.providers
    assert (alchemy.max_requests_per_second, alchemy.weight, alchemy.max_head_lag) == (25, 1, 16)
    assert (own.weight, own.unsupported_methods) == (2, ["eth_getBlockReceipts"])


def test_rpc_url_is_a_single_provider_named_default() -> None:
    chain = ChainConfig(name="a", rpc_url="http://x:8545")
    assert chain.providers == []
    assert chain.effective_providers() == [ProviderConfig(name="default", url="http://x:8545")]


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ("", "a chain needs rpc_url or at least one provider"),
        (
            'rpc_url = "http://x"\n[[chain.provider]]\nname = "a"\nurl = "http://y"',
            "give either rpc_url or providers, not both",
        ),
        (
            '[[chain.provider]]\nname = "a"\nurl = "http://y"\n'
            '[[chain.provider]]\nname = "a"\nurl = "http://z"',
            "provider names must be unique; repeated: a",
        ),
        ('[[chain.provider]]\nname = "A b"\nurl = "http://y"', "chains.0.providers.0.name"),
        ('[[chain.provider]]\nname = "a"\nurl = "ftp://y"', "chains.0.providers.0.url"),
        (
            '[[chain.provider]]\nname = "a"\nurl = "http://y"\nmax_requests_per_second = 0',
            "chains.0.providers.0.max_requests_per_second",
        ),
        (
            '[[chain.provider]]\nname = "a"\nurl = "http://169.254.169.254/KEY"',
            "provider 'a': url must not be a link-local or cloud metadata address",
        ),
    ],
)
def test_bad_providers_name_the_field(tmp_path: Path, chain: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, f'[[chain]]\nname = "main"\n{chain}\n'))
    assert message in str(error.value)
    assert "KEY" not in str(error.value)


def test_each_provider_gets_its_limits_and_its_share_of_the_rate() -> None:
    config = ChainConfig(
        name="m",
        max_replicas=4,
        rpc_batch_size=100,
        rpc_max_retries=8,
        providers=[
            ProviderConfig(name="a", url="http://a", max_requests_per_second=40, max_batch_size=20),
            ProviderConfig(name="b", url="http://b", max_concurrency=2),
        ],
    )
    a, b = (provider_settings(config, p) for p in config.providers)
    # 40/s split between 4 replicas, 90 % of it kept; the router retries, not the provider.
    assert (a.max_requests_per_second, a.batch_size, a.max_retries) == (9.0, 20, 0)
    assert (b.max_requests_per_second, b.max_concurrency, b.batch_size) == (None, 2, 100)
    router = chain_fetcher(config, Metrics(CollectorRegistry()))
    assert router.settings.batch_size == 20  # every batch fits every provider
    single = ChainConfig(name="s", rpc_url="http://s", rpc_max_retries=8)
    assert provider_settings(single, single.effective_providers()[0]).max_retries == 8
