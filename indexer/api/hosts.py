"""The Host check: the admin API answers only to names it is served under (DNS rebinding).

A web page can make a browser resolve its own name to 127.0.0.1 and then read what the API on
the user's machine answers; the browser still sends the page's name as `Host`. So a request whose
Host is not the bind address, a localhost name or one of `api_allowed_hosts` gets 421. The probes
(`/healthz`, `/readyz`) are exempt: Kubernetes sends the pod IP, and they reveal nothing.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from indexer.api.errors import error_response
from indexer.api.state import state_of

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})  # every interface: no name to add
ANY_HOST = "*"
PROBES = frozenset({"/healthz", "/readyz"})


def host_name(header: str) -> str:
    """The name in a Host header: no port, no IPv6 brackets, no trailing dot, lower case."""
    name = header.strip().lower()
    if name.startswith("["):  # [::1]:8088
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        name = name.split(":", 1)[0]
    return name.rstrip(".")


def allowed_hosts(bind_host: str, configured: list[str] | None) -> frozenset[str]:
    """`configured` if given, else the localhost names and the bind address (unless a wildcard)."""
    if configured is not None:
        return frozenset(ANY_HOST if name == ANY_HOST else host_name(name) for name in configured)
    bind = host_name(bind_host)
    return LOCAL_NAMES if bind in WILDCARD_BINDS else LOCAL_NAMES | {bind}


@web.middleware
async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    """421 for a Host this API is not served under, before anything else is looked at."""
    allowed = state_of(request).allowed_hosts or LOCAL_NAMES
    if ANY_HOST in allowed or request.path in PROBES:
        return await handler(request)
    if host_name(request.headers.get("Host", "")) not in allowed:
        return error_response(
            421, "this API does not answer to that Host name (see api_allowed_hosts)", "Host"
        )
    return await handler(request)
