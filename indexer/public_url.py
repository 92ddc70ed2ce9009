"""Provider URLs without their secrets: what logs, errors, traces, metrics and API reads may show.

Providers put API keys in the path (`https://…/v3/KEY`), the query (`?apikey=KEY`) or the
user-info (`https://user:KEY@host`). Only `scheme://host[:port]` is safe to show anywhere but
the stored configuration.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def public_url(url: str) -> str:
    """`scheme://host[:port]` of `url`: no user-info, path, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparseable URL may still carry a secret: show nothing of it
        return "<invalid url>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    scheme = parts.scheme or "?"
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"
