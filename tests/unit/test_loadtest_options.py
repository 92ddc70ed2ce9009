"""`tindexer loadtest --profile`: the simulated chain's block content, checked before any
service starts."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from indexer.cli import app
from indexer.loadtest import run_loadtest


def test_an_unknown_profile_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="unknown profile 'testnet' \\(known: default, mainnet\\)"):
        asyncio.run(run_loadtest(10, profile="testnet"))


def test_the_cli_refuses_an_unknown_profile() -> None:
    result = CliRunner().invoke(app, ["loadtest", "--blocks", "10", "--profile", "testnet"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError)
    assert "unknown profile 'testnet'" in str(result.exception)
