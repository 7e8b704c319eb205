"""The ops HTTP app every service serves: ``/healthz``, ``/readyz``, ``/metrics``.

The orchestrator mounts its public API on the same app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[bool]]

log = logging.getLogger(__name__)


def build_ops_app(service: str, checks: dict[str, ReadinessCheck]) -> FastAPI:
    """The app with the probes; ``app.state.readiness`` holds the checks (add to it freely)."""
    # FastAPI's own OpenTelemetry (a span per request and per dependency, as soon as a tracer
    # provider is installed) stays off: every probe and scrape would be a trace of its own,
    # and the order's trace has its request span from ``sagakit.telemetry``.
    app = FastAPI(
        title=service,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.readiness = dict(checks)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, object]:
        checks: dict[str, ReadinessCheck] = app.state.readiness
        names = list(checks)
        results = await asyncio.gather(*(_safe(checks[n]) for n in names))
        status = dict(zip(names, results, strict=True))
        ready = all(results)
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": status}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


async def _safe(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout=3.0)
    except Exception:  # a probe reports not-ready; it never fails the request
        return False


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service runtime owns SIGTERM/SIGINT."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        super().__init__(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
