"""JSON-RPC providers: requests, latency, adaptive limits, heads and circuits, by chain and
provider name (never URL); and rate limiting, by who refused (temporal or rpc)."""

from __future__ import annotations

from exporter.metric_families.base import LATENCY_BUCKETS, Families


class RpcFamilies(Families):
    """The JSON-RPC provider families."""

    def declare(self) -> None:
        self.rate_limited = self._counter(
            "tindexer_rate_limited_total",
            "Requests refused for rate limiting, by who refused them (temporal or rpc).",
            ["source"],
        )
        self.rpc_requests = self._counter(
            "tindexer_rpc_requests_total",
            "JSON-RPC HTTP requests sent to a chain's provider, by outcome: ok, rate_limited,"
            " timeout, too_large (answer over rpc_max_response_bytes), bad_data (an answer"
            " that is not valid JSON-RPC or chain data) or error.",
            ["chain", "provider", "method", "outcome"],
        )
        self.rpc_request_duration = self._histogram(
            "tindexer_rpc_request_duration_seconds",
            "Time from sending a JSON-RPC HTTP request to reading its whole answer, whatever the"
            " method.",
            ["chain", "provider"],
            buckets=LATENCY_BUCKETS,
        )
        self.rpc_retry_after_clamped = self._counter(
            "tindexer_rpc_retry_after_clamped_total",
            "Retry-After values from a chain's provider that were negative, not a number or"
            " longer than the client waits (60 s), and so were clamped.",
            ["chain", "provider"],
        )
        self.rpc_concurrency_limit = self._gauge(
            "tindexer_rpc_concurrency_limit",
            "Current adaptive limit on JSON-RPC requests in flight to a chain's provider.",
            ["chain", "provider"],
        )
        self.provider_head_lag = self._gauge(
            "tindexer_provider_head_lag_blocks",
            "Blocks a provider's latest available block was below the best provider's at the"
            " last head scan (0 for the best).",
            ["chain", "provider"],
        )
        self.provider_head = self._gauge(
            "tindexer_provider_head",
            "A provider's latest available block (head-1 rule) at the last head scan.",
            ["chain", "provider"],
        )
        self.provider_up = self._gauge(
            "tindexer_provider_up",
            "Whether a provider takes requests (1) or its circuit is open after repeated"
            " failures (0) until a probe succeeds.",
            ["chain", "provider"],
        )
        self.provider_circuit_opened = self._counter(
            "tindexer_provider_circuit_opened_total",
            "Times a provider was taken out of rotation after repeated failures.",
            ["chain", "provider"],
        )
        self.chain_id = self._gauge(
            "tindexer_chain_id",
            "The chain id a chain is pinned to (its chain_id knob, else stored when learned).",
            ["chain"],
        )
        self.provider_chain_id = self._gauge(
            "tindexer_provider_chain_id",
            "The chain id a provider last answered to eth_chainId.",
            ["chain", "provider"],
        )
        self.provider_chain_id_mismatch = self._gauge(
            "tindexer_provider_chain_id_mismatch",
            "Whether a provider answers another chain id than the chain's (1): it is kept out"
            " of rotation and nothing from it is used.",
            ["chain", "provider"],
        )
        self.provider_head_unverified = self._gauge(
            "tindexer_provider_head_unverified",
            "Whether a provider's last head claim was not adopted (1): no other provider"
            " witnessed it and it did not serve the block (it is demoted meanwhile).",
            ["chain", "provider"],
        )
        self.provider_head_rejected = self._counter(
            "tindexer_provider_head_rejected_total",
            "Head claims of a provider that were not adopted (unverified heads).",
            ["chain", "provider"],
        )
        self.provider_fork_disagreements = self._counter(
            "tindexer_provider_fork_disagreements_total",
            "Forks a provider reported that the other providers did not confirm; nothing was"
            " deleted for them.",
            ["chain", "provider"],
        )
        self.provider_rate_limit = self._gauge(
            "tindexer_provider_rate_limit_requests_per_second",
            "Requests per second this worker currently allows itself to a provider (its"
            " max_requests_per_second share, cut on 429s and recovering); 0 when unlimited.",
            ["chain", "provider"],
        )
        self.rpc_receipts_method = self._gauge(
            "tindexer_rpc_receipts_method",
            "Which JSON-RPC method fetches a chain's receipts: 1 for the one in use"
            " (eth_getBlockReceipts, or eth_getTransactionReceipt where the provider lacks it),"
            " 0 for the other.",
            ["chain", "method"],
        )

        for source in ("temporal", "rpc"):
            self.rate_limited.labels(source)
