"""GET /doctor: `tindexer doctor --json` from the admin API, a read like the status."""

from __future__ import annotations

from aiohttp import web

from indexer.api.state import state_of


async def doctor(request: web.Request) -> web.Response:
    """Which component throttles now; waits up to one window when no earlier scrape serves."""
    report = await state_of(request).doctor.report()
    return web.json_response(report.as_json())
