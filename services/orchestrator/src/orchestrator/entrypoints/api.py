"""The public order API and the admin API, served on the orchestrator's HTTP port.

Errors always answer ``{"error": <code>, "message": <for people>, "details": ...}`` with a 4xx
status (``sagakit.http.errors``), and bad input changes nothing. Every route declares its
response models, success and errors, in the OpenAPI.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.adapters.orm import Order, Saga
from orchestrator.adapters.redis_features import RedisFeatures
from orchestrator.adapters.repository import OrderRepository, SagaRepository
from orchestrator.domain.status import OrderStatus
from orchestrator.entrypoints import admin_api, admin_dlq, console
from orchestrator.entrypoints.admin_api import AdminAuthError
from orchestrator.service_layer.admission import AdmissionControl
from orchestrator.service_layer.dead_letters import DeadLetters
from orchestrator.service_layer.intake import (
    IdempotencyConflict,
    IntakeQueue,
    Placed,
    Placement,
    request_hash,
)
from orchestrator.service_layer.sagas import SagaService
from sagakit.contracts import OrderItem, PlaceOrder
from sagakit.contracts.text import CurrencyCode, SendableEmail, identifier
from sagakit.contracts.types import MAX_ITEMS
from sagakit.db.errors import is_retriable_db_error
from sagakit.errors import InfrastructureError
from sagakit.http.errors import error_response, error_responses
from sagakit.http.links import Link, declare_links
from sagakit.ids import new_id
from sagakit.ops.auth import FailedLogins
from sagakit.ops.logging import log_ids
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.telemetry import span_from_traceparent

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    uow: Callable[[], UnitOfWork]
    sessions: async_sessionmaker[AsyncSession]  # reads
    intake: IntakeQueue
    sagas: SagaService
    admission: AdmissionControl
    redis: RedisFeatures
    admin_token: str
    # Wrong admin credentials per client, shared by the admin API and the console's login.
    failed_logins: FailedLogins
    dead_letters: DeadLetters | None = None  # None: the DLQ routes answer 503


class OrderRequest(BaseModel):
    """The body of ``POST /orders``: the ``PlaceOrder`` contract without the order id."""

    model_config = ConfigDict(extra="forbid")

    customer_id: identifier(64)  # type: ignore[valid-type]
    email: SendableEmail
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ITEMS)]
    payment_method: identifier(128)  # type: ignore[valid-type]
    currency: CurrencyCode


class OrderLinks(BaseModel):
    order: str
    saga: str
    events: str


class OrderAccepted(BaseModel):
    """``POST /orders``: the order is accepted; its saga runs (``status`` is ``PENDING``)."""

    order_id: uuid.UUID
    saga_id: uuid.UUID
    status: OrderStatus
    links: OrderLinks


class PricedItem(BaseModel):
    product_id: str
    quantity: int
    unit_price: int | None = None
    line_total: int | None = None


class OrderView(BaseModel):
    order_id: uuid.UUID
    status: OrderStatus
    customer_id: str
    items: list[PricedItem]
    currency: str
    total: int | None
    saga_id: uuid.UUID | None
    saga_status: str | None
    failure_reason: str | None
    created_at: str | None
    updated_at: str | None


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
]


def error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    return error_response(status, code, message, headers=headers)


async def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.api
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]

router = APIRouter()


@router.post(
    "/orders",
    status_code=202,
    response_model=OrderAccepted,
    responses=error_responses(429, 503),
)
async def place_order(
    body: OrderRequest,
    ctx: Ctx,
    idempotency_key: IdempotencyKey = None,
    traceparent: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    request = PlaceOrder(order_id=new_id(), **body.model_dump())
    if idempotency_key is not None:
        cached = await ctx.redis.cached_response(body.customer_id, idempotency_key)
        if cached is not None and cached.get("request_hash") == request_hash(request):
            return _accepted(cached["body"], replayed=True)
    # Refusals first, cheapest first: nothing is stored for a refused order.
    if not ctx.admission.admit():
        return error(
            503,
            "overloaded",
            f"{ctx.admission.max_in_flight} orders are in progress, the most this system runs "
            "at once; try again after Retry-After seconds (with the same Idempotency-Key)",
            headers={"Retry-After": str(ctx.admission.retry_after_s())},
        )
    if not await ctx.redis.allow(body.customer_id):
        return error(
            429,
            "rate_limited",
            f"too many orders for customer {body.customer_id}; try again in a minute",
            headers={"Retry-After": str(ctx.redis.rate_window_left_s())},
        )
    try:
        # The caller's trace (W3C traceparent header) is honoured; without one a trace starts here.
        with (
            span_from_traceparent(
                "POST /orders",
                traceparent,
                kind=SpanKind.SERVER,
                attributes={"order_id": str(request.order_id)},
            ) as saga_traceparent,
            log_ids(None, request.order_id, saga_traceparent),
        ):
            placed = await ctx.intake.place(
                Placement(request, idempotency_key, source="api", traceparent=saga_traceparent)
            )
    except IdempotencyConflict as exc:
        return error(422, exc.code, str(exc))
    response = _placed_body(placed)
    if idempotency_key is not None:
        await ctx.redis.cache_response(
            body.customer_id,
            idempotency_key,
            {"request_hash": placed.order.request_hash, "body": response},
        )
    return _accepted(response, replayed=not placed.created)


def _placed_body(placed: Placed) -> dict[str, Any]:
    order_id = str(placed.order.order_id)
    return {
        "order_id": order_id,
        "saga_id": str(placed.saga.saga_id),
        "status": placed.order.status,
        "links": {
            "order": f"/orders/{order_id}",
            "saga": f"/sagas/{placed.saga.saga_id}",
            "events": f"/orders/{order_id}/events",
        },
    }


def _accepted(body: dict[str, Any], *, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(body, status_code=202, headers=headers)


@router.get("/orders/{order_id}", response_model=OrderView, responses=error_responses(404))
async def get_order(order_id: uuid.UUID, ctx: Ctx) -> JSONResponse:
    async with ctx.sessions() as session:
        order = await OrderRepository(session).get(order_id)
        saga = await SagaRepository(session).by_order(order_id) if order else None
    if order is None:
        return error(404, "not_found", f"order {order_id} not found")
    return JSONResponse(_order_view(order, saga))


@router.get(
    "/orders/{order_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "``event: status`` lines with an ``OrderView`` as data",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(404),
    },
)
async def order_events(order_id: uuid.UUID, ctx: Ctx) -> Any:
    """Live order status as server-sent events, until the order reaches a final status."""
    async with ctx.sessions() as session:
        order = await OrderRepository(session).get(order_id)
    if order is None:
        return error(404, "not_found", f"order {order_id} not found")
    return StreamingResponse(
        _status_stream(ctx, order_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


SSE_HEARTBEAT_S = 15.0


async def _status_stream(ctx: ApiContext, order_id: uuid.UUID) -> AsyncIterator[bytes]:
    async def current() -> dict[str, Any]:
        async with ctx.sessions() as session:
            order = await OrderRepository(session).get(order_id)
            saga = await SagaRepository(session).by_order(order_id)
        assert order is not None
        return _order_view(order, saga)

    view: dict[str, Any] | None = None
    try:
        # Subscribe first, then read: a final status published in between is then either in
        # the read or in the subscription, never lost.
        async with ctx.redis.subscription(str(order_id)) as updates:
            view = await current()
            yield _sse(view)
            while view["status"] == OrderStatus.PENDING:
                update = await updates.next(SSE_HEARTBEAT_S)
                if update is None:
                    yield b": heartbeat\n\n"
                    continue
                view = update
                yield _sse(view)
            return
    except (RedisError, OSError):
        # Without Redis the stream still works, by polling the database.
        log.info("live status for %s falls back to polling (Redis unavailable)", order_id)
    if view is None:
        view = await current()
        yield _sse(view)
    while view["status"] == OrderStatus.PENDING:
        await asyncio.sleep(1.0)
        view = await current()
    yield _sse(view)


def _sse(data: dict[str, Any]) -> bytes:
    return b"event: status\ndata: " + orjson.dumps(data) + b"\n\n"


# --- views -----------------------------------------------------------------------------------


def _order_view(order: Order, saga: Saga | None) -> dict[str, Any]:
    return {
        "order_id": str(order.order_id),
        "status": order.status,
        "customer_id": order.customer_id,
        "items": order.items,
        "currency": order.currency,
        "total": order.total,
        "saga_id": str(saga.saga_id) if saga else None,
        "saga_status": saga.status if saga else None,
        "failure_reason": saga.failure_reason if saga else None,
        "created_at": order.created_at.isoformat() if order.created_at else None,
        "updated_at": order.updated_at.isoformat() if order.updated_at else None,
    }


# --- links -----------------------------------------------------------------------------------

_ORDER = "GET /orders/{order_id}"
_SAGA = "GET /sagas/{saga_id}"
_CANCEL = "POST /admin/sagas/{saga_id}/cancel"
_RETRY = "POST /admin/sagas/{saga_id}/retry"
_ORDER_ID = {"order_id": "$response.body#/order_id"}
_SAGA_ID = {"saga_id": "$response.body#/saga_id"}

# In the OpenAPI: from an order to its status, live status and saga; from a saga to its order
# and to the operator's actions on it (the admin routes need the admin token).
LINKS = (
    Link("POST /orders", 202, _ORDER, _ORDER_ID, "the order just placed"),
    Link("POST /orders", 202, "GET /orders/{order_id}/events", _ORDER_ID, "its live status"),
    Link("POST /orders", 202, _SAGA, _SAGA_ID, "its saga (admin)"),
    Link("POST /orders", 202, _CANCEL, _SAGA_ID, "cancel its saga (admin)"),
    Link("POST /orders", 202, _RETRY, _SAGA_ID, "retry its saga (admin)"),
    Link(_ORDER, 200, _SAGA, _SAGA_ID, "its saga (admin)"),
    Link(_SAGA, 200, _ORDER, _ORDER_ID, "its order"),
    Link(_SAGA, 200, _CANCEL, _SAGA_ID, "cancel this saga"),
    Link(_SAGA, 200, _RETRY, _SAGA_ID, "retry this saga"),
    *(
        Link(action, 202, _SAGA, _SAGA_ID, "the saga after the action")
        for action in (_CANCEL, _RETRY)
    ),
    Link(_CANCEL, 202, _RETRY, _SAGA_ID, "retry the cancelled saga"),
    Link(_RETRY, 202, _CANCEL, _SAGA_ID, "cancel the retried saga"),
)


# --- wiring ----------------------------------------------------------------------------------


def install(app: FastAPI, ctx: ApiContext, *, max_body_bytes: int) -> None:
    app.state.api = ctx
    app.include_router(router)
    app.include_router(admin_api.router)
    app.include_router(admin_dlq.router)
    console.install(app)
    declare_links(app, LINKS)
    app.state.max_body_bytes = max_body_bytes  # sagakit.http.limits.BodySizeLimit reads it

    async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and not is_retriable_db_error(exc):
            raise exc
        log.warning("database unavailable for an API request: %s", exc)
        return error(503, "unavailable", "the order database is unavailable; try again shortly")

    app.add_exception_handler(InfrastructureError, unavailable)
    app.add_exception_handler(DBAPIError, unavailable)

    @app.exception_handler(AdminAuthError)
    async def unauthorised(_request: Request, _exc: AdminAuthError) -> JSONResponse:
        response = error(
            401, "unauthorised", "admin endpoints need 'Authorization: Bearer <ADMIN_TOKEN>'"
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
