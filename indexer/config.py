"""Configuration: chains and every knob, from a TOML file and the environment, validated."""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from indexer.datasets import DATASETS, Dataset, normalize_datasets

BIGINT_MAX = 2**63 - 1  # block numbers are PostgreSQL bigints

# The largest answer (decoded) a provider may send to one JSON-RPC batch. A mainnet transaction
# in a full block is about 2 KiB of JSON: ~700 bytes of hashes, addresses, signature and
# quantities, plus its calldata (~500 bytes on average, 1 KiB as hex). Real blocks carry 150-300
# transactions (DESIGN.md), so 300 x 2 KiB = 600 KiB a block and the default batch of 100 blocks
# is about 60 MiB. A single block stays far below the cap even when full of calldata (30M gas
# at 16 gas a byte = 1.9 MB, 3.75 MB as hex), and a batch over it is split in two: a cap set
# too low costs requests, never blocks. What it stops is a provider's gzip bomb.
DEFAULT_RPC_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# JSON-RPC answer bytes a worker holds at once (indexer/worker_budget.py). deploy/ grants a worker
# 1 GiB. One worker with every range slot offered (bench/worker_rss.py, 64,000 blocks) peaked at
# 377 MiB on mainnet-shaped blocks and 316 MiB on 3-transaction blocks with 32 MiB
# (bench/results/worker_rss.json); 64 MiB bought no speed (88.9 vs 87.6 mainnet blocks/s, one
# worker) for 615 MiB. A batch in memory (answer, decoded blocks, COPY lines) is several times its
# answer bytes, and a worker idles near 150 MiB.
DEFAULT_WORKER_MEMORY_BUDGET_BYTES = 32 * 1024 * 1024

# Cloud metadata services answer on link-local addresses (169.254.0.0/16, fe80::/10), plus these
# names and addresses outside that range. A provider URL pointing at one turns the indexer into
# a way to read the instance's credentials, so it takes `allow_link_local_rpc = true`.
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog"})
# AWS's IPv6 endpoint and Alibaba's:
METADATA_ADDRESSES = frozenset(map(ipaddress.ip_address, ("fd00:ec2::254", "100.100.100.200")))


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the field and the reason."""


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any form a resolver accepts (`2852039166` too)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_metadata_host(host: str) -> bool:
    """Whether `host` is literally link-local or a known cloud metadata endpoint (no DNS lookup)."""
    host = host.lower().rstrip(".")
    if host in METADATA_NAMES:
        return True
    address = _literal_address(host)
    return address is not None and (address.is_link_local or address in METADATA_ADDRESSES)


def rpc_url_problem(url: str, allow_link_local: bool = False) -> str | None:
    """Why `url` cannot be a provider URL, or None; the reason never repeats the URL (keys)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        return "must be a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not host:
        return "must name a host"
    if not allow_link_local and is_metadata_host(host):
        return (
            "must not be a link-local or cloud metadata address"
            " (set allow_link_local_rpc = true to allow it)"
        )
    return None


PROVIDER_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DEFAULT_PROVIDER = "default"  # the name `rpc_url` gets as a chain's only provider


class ProviderConfig(BaseModel):
    """One JSON-RPC provider of a chain: where it is and what it allows."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    name: str = Field(
        pattern=PROVIDER_NAME_PATTERN, description="Provider name, a slug; metrics label by it."
    )
    url: str = Field(pattern=r"^https?://", description="JSON-RPC endpoint (may carry a key).")
    max_requests_per_second: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="Most HTTP requests per second to this provider, split between the"
        " chain's max_replicas workers; unset: no limit but the adaptive one.",
    )
    max_concurrency: int | None = Field(
        None, ge=1, le=256, description="Most requests in flight; default rpc_max_concurrency."
    )
    max_batch_size: int | None = Field(
        None, ge=1, le=1_000, description="Most calls per batch; default rpc_batch_size."
    )
    weight: float = Field(
        1.0, gt=0, le=1_000, description="Share of traffic relative to the other providers."
    )
    unsupported_methods: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="JSON-RPC methods this provider lacks (e.g. eth_getBlockReceipts).",
    )
    max_head_lag: int = Field(
        16,
        ge=0,
        le=BIGINT_MAX,
        description="Blocks behind the best provider's head before this one counts as lagging"
        " (and is never asked for blocks above its own head).",
    )


class ChainConfig(BaseModel):
    """One chain to index and the knobs that shape how it is scheduled."""

    # hide_input_in_errors: a rejected value may be a provider URL with its key in it.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Chain name, a slug.")
    rpc_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description='JSON-RPC endpoint: a chain\'s only provider (named "default"). Give'
        " either this or `providers`.",
    )
    providers: list[ProviderConfig] = Field(
        default_factory=list,
        max_length=32,
        description="The chain's JSON-RPC providers (`[[chain.provider]]`), in place of rpc_url.",
    )
    chain_id: int | None = Field(
        None,
        ge=1,
        le=BIGINT_MAX,
        description="The chain's EVM chain id: every provider must answer it to eth_chainId"
        " before it serves anything. Unset: the id most providers answer at the first head"
        " scan, then stored.",
    )
    start_block: int = Field(0, ge=0, le=BIGINT_MAX, description="First block to index.")
    datasets: list[Dataset] = Field(
        default_factory=lambda: list(DATASETS),
        description="What to index: blocks (always), transactions, receipts (merged into the"
        " transaction rows), logs. Adding one to an indexed chain fills it in for every"
        " indexed block.",
    )
    # 5,000, not 2,000: a 750k x 3-tx backlog took 58.4-59.8 s instead of 63.7-69.4 s (Temporal's
    # CPU 8.2-9.2 instead of 14.0 s; loadtest, 2 workers, same machine); 10,000 was not clearly
    # faster (53.3-62.2 s). A range's batches stream, several in flight, so a short backlog in
    # one range still keeps the node busy.
    blocks_per_workflow: int = Field(
        5_000,
        ge=1,
        le=100_000,
        description="Blocks per IndexRange workflow. A range streams in batches sized by the"
        " worker's memory budget, so its length costs no memory; fewer, longer ranges mean"
        " fewer workflow starts, more of them mean more parallel ranges for a short backlog.",
    )
    scheduler_batch_size: int = Field(
        500, ge=1, le=10_000, description="Ranges started per start activity."
    )
    parallelism: int | None = Field(
        None, ge=1, le=1024, description="Concurrent workflow starts; default multiplier × CPU."
    )
    parallelism_multiplier: int = Field(8, ge=1, le=256, description="Starts per CPU.")
    continue_as_new_threshold: int = Field(
        2_000, ge=1, le=100_000, description="Scheduler starts before ContinueAsNew."
    )
    catchup_threshold: int = Field(
        5_000, ge=0, le=BIGINT_MAX, description="Backlogs below this many blocks go direct."
    )
    max_inflight_ranges: int = Field(
        64, ge=1, le=100_000, description="Most IndexRange workflows unfinished at once."
    )
    max_reorg_depth: int = Field(64, ge=1, le=10_000, description="Blocks checked for reorgs.")
    finality: Literal["finalized", "safe"] | Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        None,
        description="Which blocks are final, never re-checked for reorgs: the node's"
        ' "finalized" or "safe" block, or a depth N (the N newest blocks may change);'
        " unset (default), nothing is final and max_reorg_depth alone bounds the reorg window. A"
        " fork at or below the final block is alerted, not repaired.",
    )
    head_poll_interval_seconds: float = Field(
        1.0, gt=0, le=3600, description="How often HeadScan asks for the head."
    )
    live_edge_blocks: int = Field(
        32,
        ge=0,
        le=10_000,
        description="A gap at the head of at most this many blocks is indexed by the head scan"
        " itself, without an IndexRange workflow (0: every gap goes to IndexRange). 32 covers"
        " the blocks of a few polls at sub-second block times and a short provider stall,"
        " and stays a few batches of mainnet-sized blocks inside one scan.",
    )
    live_sync_lag: int = Field(
        2, ge=0, le=BIGINT_MAX, description="A chain within this many blocks of its head is live."
    )
    block_time_seconds: float = Field(
        12.0,
        gt=0,
        le=3600,
        description="The chain's block time (12 s: Ethereum mainnet); sets the default freshness"
        " objective.",
    )
    freshness_objective_seconds: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="A block is fresh when it is queryable within this many seconds of the head"
        " scan that first saw it; default 2 x block_time_seconds + 2 s. The SLO rounds it down to"
        " a bucket bound of tindexer_block_freshness_seconds.",
    )
    freshness_target: float = Field(
        0.99, gt=0, lt=1, description="Share of blocks that must be fresh (the freshness SLO)."
    )
    rpc_batch_size: int = Field(
        100, ge=1, le=1_000, description="Most calls per JSON-RPC batch (request)."
    )
    rpc_max_concurrency: int = Field(
        16, ge=1, le=256, description="Most JSON-RPC requests in flight per chain."
    )
    rpc_timeout_seconds: float = Field(10.0, gt=0, le=300, description="Per-request timeout.")
    rpc_max_retries: int = Field(8, ge=0, le=100, description="Retries of one RPC request.")
    rpc_max_response_bytes: int = Field(
        DEFAULT_RPC_MAX_RESPONSE_BYTES,
        ge=1024 * 1024,  # ordinary mainnet blocks are ~600 KiB each
        le=1024 * 1024 * 1024,
        description="Largest decoded answer to one JSON-RPC batch; a batch over it is split.",
    )
    index_max_attempts: int = Field(
        10, ge=1, le=1_000, description="Attempts of the IndexRange activity before it fails."
    )
    min_replicas: int = Field(1, ge=0, le=1_000, description="Fewest worker replicas.")
    max_replicas: int = Field(1, ge=0, le=1_000, description="Most worker replicas.")

    @field_validator("datasets")
    @classmethod
    def _datasets_consistent(cls, datasets: list[Dataset]) -> list[Dataset]:
        return normalize_datasets(datasets)

    @model_validator(mode="after")
    def _providers_given(self) -> ChainConfig:
        if self.rpc_url is None and not self.providers:
            raise ValueError("a chain needs rpc_url or at least one provider")
        if self.rpc_url is not None and self.providers:
            raise ValueError("give either rpc_url or providers, not both")
        names = [provider.name for provider in self.providers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"provider names must be unique; repeated: {', '.join(repeated)}")
        return self

    def effective_providers(self) -> list[ProviderConfig]:
        """The providers, or `rpc_url` as the single provider "default"."""
        if self.providers:
            return list(self.providers)
        assert self.rpc_url is not None  # _providers_given
        return [ProviderConfig(name=DEFAULT_PROVIDER, url=self.rpc_url)]

    @model_validator(mode="after")
    def _replicas_ordered(self) -> ChainConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self

    def freshness_objective(self) -> float:
        """Seconds within which a block counts as fresh: the knob, else 2 block times + 2 s."""
        if self.freshness_objective_seconds is not None:
            return self.freshness_objective_seconds
        return 2 * self.block_time_seconds + 2

    def effective_parallelism(self) -> int:
        """The start pool size: the override, or multiplier × CPU count."""
        return self.parallelism or self.parallelism_multiplier * (os.cpu_count() or 1)


class Settings(BaseModel):
    """Process-wide settings: where Temporal, PostgreSQL and the endpoints are."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    database_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    # The Temporal server's Prometheus endpoint (full URL, http://host:port/metrics); unset,
    # `tindexer doctor` says it cannot see the server rather than guessing.
    temporal_metrics_url: str | None = Field(None, pattern=r"^https?://")
    # Where `tindexer up`'s embedded dev server serves its metrics (beside the UI's 8233).
    temporal_metrics_port: int = Field(8234, ge=1, le=65535)
    task_queue: str = "tindexer"
    data_dir: Path = Path(".tindexer")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8088, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535)
    api_token: str | None = None
    # Host names the admin API answers to (DNS rebinding); unset: its bind address and localhost.
    # ["*"] accepts any, for a reverse proxy that checks Host itself.
    api_allowed_hosts: list[str] | None = None
    # Provider URLs on link-local addresses (cloud metadata services) are refused unless set.
    allow_link_local_rpc: bool = False
    # JSON-RPC answer bytes one worker process holds at once, over all its ranges.
    worker_memory_budget_bytes: int = Field(DEFAULT_WORKER_MEMORY_BUDGET_BYTES, ge=1024 * 1024)
    # `tindexer up` only: 0 runs its worker inside up's own process; N runs N `tindexer worker`
    # processes instead, each with a core's worth of Python, serving /metrics on
    # worker_metrics_port_base + n (unset: metrics_port + 1 + n). One process that follows 100
    # chains saturates its core (bench/results/chains.json).
    worker_processes: int = Field(0, ge=0, le=64)
    worker_metrics_port_base: int | None = Field(None, ge=1, le=65535)
    # The indexer /metrics endpoints `tindexer doctor` and GET /doctor read (every worker's);
    # unset: http://{metrics_host}:{metrics_port}/metrics, and each of up's worker processes'.
    doctor_metrics_urls: list[str] | None = None
    chains: list[ChainConfig] = []

    @model_validator(mode="after")
    def _unique_chain_names(self) -> Settings:
        names = [chain.name for chain in self.chains]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"chain names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _safe_rpc_urls(self) -> Settings:
        for chain in self.chains:
            if chain.rpc_url is not None:
                problem = rpc_url_problem(chain.rpc_url, self.allow_link_local_rpc)
                if problem:
                    raise ValueError(f"chain {chain.name!r}: rpc_url {problem}")
            for provider in chain.providers:
                problem = rpc_url_problem(provider.url, self.allow_link_local_rpc)
                if problem:
                    raise ValueError(
                        f"chain {chain.name!r}: provider {provider.name!r}: url {problem}"
                    )
        return self

    @model_validator(mode="after")
    def _worker_ports_known(self) -> Settings:
        if self.worker_processes and not self.metrics_port and not self.worker_metrics_port_base:
            raise ValueError(
                "worker_processes with metrics_port 0 needs worker_metrics_port_base: the"
                " workers' ports follow metrics_port"
            )
        return self

    def worker_metrics_ports(self) -> list[int]:
        """The /metrics ports of `tindexer up`'s worker processes (none when it runs its own)."""
        base = self.worker_metrics_port_base or self.metrics_port + 1
        return [base + n for n in range(self.worker_processes)]


ENVIRONMENT = {
    "DATABASE_URL": "database_url",
    "TEMPORAL_ADDRESS": "temporal_address",
    "TINDEXER_TEMPORAL_METRICS_URL": "temporal_metrics_url",
    "TINDEXER_API_TOKEN": "api_token",
}


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: `field.path: message`."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "(root)"
        lines.append(f"{location}: {problem['msg']}")
    return "\n".join(lines)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (or TINDEXER_CONFIG), then the environment, then explicit overrides."""
    raw: dict[str, Any] = {}
    path = path or (
        Path(os.environ["TINDEXER_CONFIG"]) if os.environ.get("TINDEXER_CONFIG") else None
    )
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        raw["chains"] = raw.pop("chain", raw.get("chains", []))
        for chain in raw["chains"]:
            if isinstance(chain, dict) and "provider" in chain:  # [[chain.provider]] tables
                chain["providers"] = chain.pop("provider")
    for variable, field_name in ENVIRONMENT.items():
        if os.environ.get(variable):
            raw[field_name] = os.environ[variable]
    raw.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        source = f"{path}" if path else "settings"
        raise ConfigError(
            f"{source}: invalid configuration\n{format_validation_error(exc)}"
        ) from exc
