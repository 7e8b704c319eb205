"""The ops HTTP app every service serves: ``/healthz``, ``/readyz``, ``/metrics``.

The orchestrator mounts its public API on the same app, inventory its catalog. Every error of
the app answers ``{"error", "message", "details"}`` (``sagakit.http.errors``) and bodies over
``app.state.max_body_bytes`` answer 413 (``sagakit.http.limits``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from sagakit.http.errors import install_error_handlers
from sagakit.http.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimit
from sagakit.ops.metrics import ScrapeRefresh

ReadinessCheck = Callable[[], Awaitable[bool]]

log = logging.getLogger(__name__)


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]


def build_ops_app(
    service: str,
    checks: dict[str, ReadinessCheck],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The app with the probes; ``app.state.readiness`` holds the checks (add to it freely),
    ``app.state.scrape`` the refreshers of scrape-time gauges (``ScrapeRefresh.add``),
    ``app.state.max_body_bytes`` the body limit (change it freely before serving)."""
    # FastAPI's own OpenTelemetry (a span per request and per dependency, as soon as a tracer
    # provider is installed) stays off: every probe and scrape would be a trace of its own,
    # and the order's trace has its request span from ``sagakit.telemetry``.
    app = FastAPI(
        title=service,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.readiness = dict(checks)
    app.state.scrape = ScrapeRefresh()
    app.state.max_body_bytes = max_body_bytes
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok", service=service)

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["ops"],
        responses={503: {"model": Readiness, "description": "not ready: a dependency is down"}},
    )
    async def readyz() -> JSONResponse:
        """Readiness: every dependency check passes (within 3 s)."""
        checks: dict[str, ReadinessCheck] = app.state.readiness
        names = list(checks)
        results = await asyncio.gather(*(_safe(checks[n]) for n in names))
        body = Readiness(ready=all(results), checks=dict(zip(names, results, strict=True)))
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        """Prometheus metrics."""
        scrape: ScrapeRefresh = app.state.scrape
        await scrape.run()
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
