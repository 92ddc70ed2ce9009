"""Every error the admin API answers is JSON: {"error": message, "field": name or null}."""

from __future__ import annotations

from aiohttp import web


class ApiError(Exception):
    """An error response: HTTP status, a message, and the request field it is about (if any)."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field

    def response(self) -> web.Response:
        return error_response(self.status, self.error, self.field)


def error_response(
    status: int, error: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "field": field}, status=status, headers=headers)


def not_found(name: str) -> ApiError:
    return ApiError(404, f"no chain named {name!r}")
