"""Configuration validation: clear messages naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from indexer.config import ChainConfig, ConfigError, Settings, load_settings
from indexer.doctor.report import default_metrics_urls


def test_a_valid_file_with_environment_overrides(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[chain]]\nname = "main"\nrpc_url = "http://127.0.0.1:8545"\nblocks_per_workflow = 250\n'
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    settings = load_settings(path)
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.chains[0].blocks_per_workflow == 250
    assert settings.chains[0].max_inflight_ranges == 64


def test_temporal_metrics_settings(tmp_path: Path, monkeypatch) -> None:
    """The server's metrics: unknown unless set, the embedded server's port 8234 by default."""
    monkeypatch.delenv("TINDEXER_TEMPORAL_METRICS_URL", raising=False)
    monkeypatch.delenv("TINDEXER_CONFIG", raising=False)
    settings = load_settings()
    assert (settings.temporal_metrics_url, settings.temporal_metrics_port) == (None, 8234)
    path = tmp_path / "c.toml"
    path.write_text("temporal_metrics_port = 9234\n")
    monkeypatch.setenv("TINDEXER_TEMPORAL_METRICS_URL", "http://temporal:9090/metrics")
    settings = load_settings(path)
    assert settings.temporal_metrics_url == "http://temporal:9090/metrics"
    assert settings.temporal_metrics_port == 9234
    assert load_settings(path, temporal_metrics_port=9334).temporal_metrics_port == 9334


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ("blocks_per_workflow = 0", "chains.0.blocks_per_workflow: Input should be greater than"),
        ("bogus = 1", "chains.0.bogus: Extra inputs are not permitted"),
        ("min_replicas = 5\nmax_replicas = 2", "min_replicas must not exceed max_replicas"),
    ],
)
def test_invalid_values_name_the_field(tmp_path: Path, chain: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[[chain]]\nname = "main"\nrpc_url = "http://x"\n{chain}\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert message in str(error.value)


def test_bad_toml_and_missing_file_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    path = tmp_path / "bad.toml"
    path.write_text("[[chain]\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(path)


def test_parallelism_defaults_to_multiplier_times_cpus(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    chain = ChainConfig(name="a", rpc_url="http://x", parallelism_multiplier=8)
    assert chain.effective_parallelism() == 16
    assert chain.model_copy(update={"parallelism": 3}).effective_parallelism() == 3


def test_up_worker_processes_listen_after_up_and_the_doctor_reads_them_all() -> None:
    settings = Settings(metrics_port=9500, worker_processes=2)
    assert settings.worker_metrics_ports() == [9501, 9502]
    assert default_metrics_urls(settings) == [
        "http://127.0.0.1:9500/metrics",
        "http://127.0.0.1:9501/metrics",
        "http://127.0.0.1:9502/metrics",
    ]
    based = Settings(metrics_port=9500, worker_processes=2, worker_metrics_port_base=7000)
    assert based.worker_metrics_ports() == [7000, 7001]
    assert Settings(metrics_port=9500).worker_metrics_ports() == []  # up runs its own worker
    with pytest.raises(ValidationError):
        Settings(worker_processes=-1)
    with pytest.raises(ValidationError, match="needs worker_metrics_port_base"):
        Settings(metrics_port=0, worker_processes=1)  # ports would follow port 0
    assert Settings(metrics_port=0, worker_processes=1, worker_metrics_port_base=7000)
