"""What a JSON-RPC call can fail with, and how long a provider may make us wait.

Every message here is shown outside the stored configuration (activity failures in Temporal
history, logs, span status), so it names the provider by `public_url` only and carries no text
the provider wrote that was not first passed through `Redactor` (chain/redaction.py).
"""

from __future__ import annotations

import email.utils
import math
import time

# Retry-After is obeyed up to this long. A provider (or a proxy in front of it) answering
# `Retry-After: 1e9` or `inf` would otherwise pause its chain on this worker until a restart;
# a minute is longer than any real provider asks for, and past it the adaptive limiter and
# the jittered backoff keep a still-throttling provider from being hammered.
MAX_RETRY_AFTER_SECONDS = 60.0


class RpcError(Exception):
    """A JSON-RPC call failed; `retryable` says whether trying again could help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class MethodNotFound(RpcError):
    """The provider does not serve this method (JSON-RPC -32601 or its words): retrying cannot
    help, another method may (eth_getBlockReceipts falls back to eth_getTransactionReceipt)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class RateLimited(RpcError):
    """The provider refused the request for rate limiting; wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RpcTimeout(RpcError):
    """No whole answer within the request timeout (connecting, or reading the answer)."""


class ResponseTooLarge(RpcError):
    """The answer's decoded body passed the response cap; a smaller batch may fit."""


class WrongChain(RpcError):
    """The provider answers another chain id than the chain's: nothing from it is used."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class RpcUnavailable(Exception):
    """Every retry of a request failed; the message carries the last error, `last` the error."""

    def __init__(self, message: str, last: Exception | None = None) -> None:
        super().__init__(message)
        self.last = last


def read_retry_after(
    value: str | None, limit: float = MAX_RETRY_AFTER_SECONDS
) -> tuple[float | None, bool]:
    """Seconds to wait (0..limit, or None to back off instead), and whether that was clamped.

    A number of seconds or an HTTP date. Values past `limit` (1e9, inf, a date in year 9999),
    negative ones and NaN are clamped and reported, so the caller can count them; garbage is
    ignored, as if there were no header.
    """
    if not value:
        return None, False
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None, False
        seconds = max(0.0, when.timestamp() - time.time())  # a date already past: go now
    if math.isnan(seconds):
        return None, True
    return min(max(0.0, seconds), limit), not 0.0 <= seconds <= limit


def parse_retry_after(value: str | None, limit: float = MAX_RETRY_AFTER_SECONDS) -> float | None:
    """Seconds to wait from a Retry-After header, clamped to 0..limit; None when unusable."""
    return read_retry_after(value, limit)[0]
