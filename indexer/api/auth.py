"""Bearer-token authentication of every mutating request, compared in constant time."""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from indexer.api.errors import error_response
from indexer.api.state import state_of

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tindexer"'}


def generate_token() -> str:
    """A new random token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def presented_token(request: web.Request) -> bytes | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip().encode("utf-8", "surrogateescape")


def token_matches(expected: str, presented: bytes | None) -> bool:
    """Constant time in the token's content, so timing says nothing about how much matched."""
    return presented is not None and hmac.compare_digest(expected.encode("utf-8"), presented)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 for a mutating request without the right token, before its body is read."""
    if request.method not in READ_METHODS and not token_matches(
        state_of(request).token, presented_token(request)
    ):
        return error_response(
            401, "missing or wrong bearer token", "Authorization", headers=CHALLENGE
        )
    return await handler(request)
