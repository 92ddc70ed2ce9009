"""The `/metrics` endpoint: the registry as it is cached now, in text or OpenMetrics format."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, exposition


def metrics_app(registry: CollectorRegistry) -> web.Application:
    """An aiohttp app with GET /metrics; OpenMetrics (with exemplars) when the scraper asks."""

    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = exposition.choose_encoder(request.headers.get("Accept", ""))
        body = encoder(registry)
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
