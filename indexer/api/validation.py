"""Request bodies and query strings, checked strictly: integers are integers, unknown fields fail.

The checks run in the order a client can act on: content type (415), size (413), JSON
syntax (400), then each field (400 naming the field). Pydantic runs in strict mode, so
`"5"`, `5.0` and `true` are not accepted where an integer is documented.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from indexer.api.errors import ApiError
from indexer.config import BIGINT_MAX as MAX_INT64
from indexer.config import DEFAULT_PROVIDER, ChainConfig, rpc_url_problem
from indexer.public_url import public_url

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: a chain config is under 2 KiB; anything bigger is abuse
RESERVED_NAMES = frozenset({"status"})  # `/chains/status` is every chain's status
GAPS_DEFAULT_LIMIT = 100
GAPS_MAX_LIMIT = 1_000
NAME_PATTERN = r"^(?!status$)[a-z0-9][a-z0-9_-]{0,62}$"
# Printable ASCII only: a URL with spaces, control characters or NUL is a typo, not an endpoint.
RPC_URL_PATTERN = r"^https?://[!-~]+$"
RPC_URL_MAX_LENGTH = 2048
# ChainConfig fields with no upper bound of their own: the API bounds them by bigint.
UNBOUNDED_INTEGERS = ("start_block", "catchup_threshold", "live_sync_lag")


class BackfillRequest(BaseModel):
    """Blocks `from`..`to` (inclusive) to index, whatever the chain's start_block."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_block: int = Field(alias="from", ge=0, le=MAX_INT64, description="First block.")
    to_block: int = Field(alias="to", ge=0, le=MAX_INT64, description="Last block, inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillRequest:
        if self.from_block > self.to_block:
            raise ValueError("`from` must not exceed `to`")
        return self


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _check_values(value: Any, path: str) -> None:
    """Strings PostgreSQL can store (UTF-8, no NUL) and finite numbers, at every depth."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "strings must not contain NUL characters", path or None)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "strings must be valid Unicode", path or None) from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ApiError(400, "numbers must be finite", path or None)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_values(key, path)
            _check_values(item, key if not path else f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{path}[{index}]")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or the 415/413/400 a client can fix."""
    if not _is_json(request.content_type):
        raise ApiError(415, "the body must be JSON (Content-Type: application/json)")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"the body must not exceed {MAX_BODY_BYTES} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"the body must not exceed {MAX_BODY_BYTES} bytes") from None
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ApiError(400, f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    _check_values(body, "")
    return body


def _first_error(exc: ValidationError, known: Mapping[str, Any] | None = None) -> ApiError:
    """The first problem as a 400 naming its field; a cross-field rule names its first field."""
    problem = exc.errors()[0]
    location = [str(part) for part in problem["loc"]]
    field = location[0] if location else None
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        message = "unknown field"
    if field is None and known:
        field = next((name for name in known if name in message), None)
    return ApiError(400, message, field)


def _check_api_rules(body: Mapping[str, Any], allow_link_local: bool) -> None:
    """The API's bounds beyond ChainConfig's own: bigint-sized integers, a printable, safe URL.

    No message repeats the URL: it may carry the provider's key.
    """
    for name in UNBOUNDED_INTEGERS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_INT64:
            raise ApiError(400, f"Input should be less than or equal to {MAX_INT64}", name)
    _check_url(body.get("rpc_url"), "rpc_url", allow_link_local)
    providers = body.get("providers")
    if isinstance(providers, list):
        for index, provider in enumerate(providers):
            if isinstance(provider, dict):
                _check_url(provider.get("url"), f"providers[{index}].url", allow_link_local)


def _check_url(url: Any, field: str, allow_link_local: bool) -> None:
    if not isinstance(url, str):
        return
    if len(url) > RPC_URL_MAX_LENGTH or not re.fullmatch(RPC_URL_PATTERN, url):
        raise ApiError(
            400,
            f"must be an http(s) URL of printable ASCII, at most {RPC_URL_MAX_LENGTH} long",
            field,
        )
    problem = rpc_url_problem(url, allow_link_local)
    if problem:
        raise ApiError(400, problem, field)


def new_chain(body: dict[str, Any], allow_link_local: bool = False) -> ChainConfig:
    """A POSTed chain: every field checked, defaults for the knobs it leaves out."""
    _check_api_rules(body, allow_link_local)
    try:
        config = ChainConfig.model_validate(body, strict=True)
    except ValidationError as exc:
        raise _first_error(exc, ChainConfig.model_fields) from None
    if config.name in RESERVED_NAMES:
        raise ApiError(400, f"{config.name!r} is reserved", "name")
    return config


def patched_chain(
    current: ChainConfig, body: dict[str, Any], allow_link_local: bool = False
) -> ChainConfig:
    """`current` with every field of a PATCH body applied, or the 400 naming the bad field.

    An `rpc_url` equal to what reads show (scheme://host[:port]) keeps the stored URL and its
    key, so a chain read, edited and sent back does not lose its key.
    """
    if "name" in body and body["name"] != current.name:
        raise ApiError(400, "a chain cannot be renamed", "name")
    if current.rpc_url is not None and body.get("rpc_url") == public_url(current.rpc_url):
        body = {key: value for key, value in body.items() if key != "rpc_url"}
    # What a read shows of the one a chain does not use (rpc_url null, providers []) is no change.
    body = {
        key: value
        for key, value in body.items()
        if not (key == "rpc_url" and value is None) and not (key == "providers" and value == [])
    }
    body = _keep_provider_keys(current, body)
    _check_api_rules(body, allow_link_local)
    unknown = sorted(set(body) - set(ChainConfig.model_fields))
    if unknown:
        raise ApiError(400, "unknown field", unknown[0])
    merged = {**current.model_dump(), **body}
    # One replaces the other: providers sent to a chain with rpc_url (or the reverse) switch it.
    if "providers" in body and "rpc_url" not in body:
        merged["rpc_url"] = None
    if "rpc_url" in body and "providers" not in body:
        merged["providers"] = []
    try:
        return ChainConfig.model_validate(merged, strict=True)
    except ValidationError as exc:
        error = _first_error(exc, body)
        if error.field is None:  # a rule across fields: blame one the client sent
            error.field = next(iter(body), None)
        raise error from None


def _keep_provider_keys(current: ChainConfig, body: dict[str, Any]) -> dict[str, Any]:
    """A provider sent back with the URL reads show (scheme://host[:port]) keeps its stored URL.

    Matched by name, so a chain read, edited and sent back keeps every provider's key.
    """
    providers = body.get("providers")
    if not isinstance(providers, list):
        return body
    stored = {provider.name: provider.url for provider in current.providers}
    if current.rpc_url is not None:
        stored.setdefault(DEFAULT_PROVIDER, current.rpc_url)
    kept = []
    for provider in providers:
        if isinstance(provider, dict) and isinstance(provider.get("name"), str):
            url = stored.get(provider["name"])
            if url is not None and provider.get("url") == public_url(url):
                provider = {**provider, "url": url}
        kept.append(provider)
    return {**body, "providers": kept}


def backfill_request(body: dict[str, Any]) -> BackfillRequest:
    try:
        return BackfillRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        problem = exc.errors()[0]
        if not problem["loc"]:
            raise ApiError(400, problem["msg"].removeprefix("Value error, "), "from") from None
        raise _first_error(exc) from None


def _query_int(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit():
        raise ApiError(400, f"must be an integer from {low} to {high}", name)
    value = int(text)
    if not low <= value <= high:
        raise ApiError(400, f"must be an integer from {low} to {high}", name)
    return value


def gaps_query(query: Mapping[str, str]) -> tuple[int, int | None]:
    """`limit` (1..1000, default 100) and `after` (a gap start from the previous page)."""
    limit = _query_int(query, "limit", 1, GAPS_MAX_LIMIT)
    after = _query_int(query, "after", 0, MAX_INT64)
    return (GAPS_DEFAULT_LIMIT if limit is None else limit), after
