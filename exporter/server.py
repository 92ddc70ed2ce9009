"""The `/metrics` endpoint: the registry as it is cached now, in text or OpenMetrics format.

Collectors refresh in the background (exporter/collectors/): a scrape only renders what they
cached, through exporter/exposition.py, whose cost per series stays small at 100 chains.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.exposition import Renderer


def metrics_app(registry: CollectorRegistry) -> web.Application:
    """An aiohttp app with GET /metrics; OpenMetrics (with exemplars) when the scraper asks."""

    renderer = Renderer(registry)

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = renderer.render(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def start_metrics_server(
    registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 9464
) -> web.AppRunner:
    """Serve /metrics on host:port; call `await runner.cleanup()` to stop."""
    runner = web.AppRunner(metrics_app(registry), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
