"""The admin API (bearer ``ADMIN_TOKEN``): find sagas, read timelines, find stuck sagas,
cancel and retry. Every action is audited in ``admin_actions``; the operator is the
``X-Operator`` header (default: ``admin-token``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from orchestrator.domain.engine import SagaNotCancellable, SagaNotRetriable
from orchestrator.domain.saga import SagaState
from orchestrator.domain.status import SagaStatus
from orchestrator.service_layer.operations import Operations, SagaFilter
from sagakit.contracts.text import IDENTIFIER_PATTERN, text
from sagakit.http.errors import error_response, error_responses
from sagakit.ops.auth import admin_bearer_ok, bearer_scheme


class AdminAuthError(Exception):
    pass


class Definition(BaseModel):
    name: str
    version: int


class SagaView(BaseModel):
    saga_id: uuid.UUID
    order_id: uuid.UUID
    definition: Definition
    status: str
    current_step: int
    awaiting_step: str | None
    deadline_at: datetime | None
    compensation_attempts: int
    next_retry_at: datetime | None
    failure_reason: str | None
    created_at: datetime | None
    updated_at: datetime | None


class StepView(BaseModel):
    position: int
    name: str
    status: str
    command_message_id: uuid.UUID | None


class HistoryView(BaseModel):
    at: datetime
    event: str
    step: str | None
    from_status: str | None
    to_status: str | None
    cause: str | None
    detail: str | None


class SagaDetail(SagaView):
    steps: list[StepView]
    history: list[HistoryView]


class SagaPage(BaseModel):
    sagas: list[SagaView]
    limit: int
    next_cursor: str | None


class StuckView(BaseModel):
    saga: SagaView
    why: str


class StuckList(BaseModel):
    stuck: list[StuckView]


class CancelRequest(BaseModel):
    reason: text(1000)  # type: ignore[valid-type]


class RetryRequest(BaseModel):
    reason: text(1000, min_length=0) | None = None  # type: ignore[valid-type]


ERRORS = error_responses(401, 429)
NOT_FOUND = error_responses(404)
REFUSED = error_responses(404, 409)

# Bounds on every numeric query parameter: beyond them a filter means nothing, and an int64 or a
# timedelta would overflow (a 500) instead of a clear 422.
MAX_SECONDS = 10 * 365 * 24 * 3600.0
MAX_VERSION = 1_000_000
MAX_STEP = 1_000
Seconds = Annotated[float, Query(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Filter = Annotated[str | None, Query(min_length=1, max_length=200, pattern=IDENTIFIER_PATTERN)]


def _ctx(request: Request) -> Any:
    return request.app.state.api


async def require_admin(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    ctx = _ctx(request)
    if not admin_bearer_ok(request, ctx.admin_token, ctx.failed_logins, "admin_api"):
        raise AdminAuthError


def operations(request: Request) -> Operations:
    ctx = _ctx(request)
    return Operations(ctx.uow, ctx.sagas)


Ops = Annotated[Operations, Depends(operations)]
Operator = Annotated[
    str, Header(alias="X-Operator", min_length=1, max_length=200, pattern=IDENTIFIER_PATTERN)
]

router = APIRouter(dependencies=[Depends(require_admin)], responses=ERRORS, tags=["admin"])


def _error(status: int, code: str, message: str) -> JSONResponse:
    return error_response(status, code, message)


def saga_view(saga: SagaState) -> SagaView:
    return SagaView(
        saga_id=saga.saga_id,
        order_id=saga.order_id,
        definition=Definition(name=saga.definition_name, version=saga.definition_version),
        status=saga.status,
        current_step=saga.current_step,
        awaiting_step=saga.awaiting_step,
        deadline_at=saga.deadline_at,
        compensation_attempts=saga.compensation_attempts,
        next_retry_at=saga.next_retry_at,
        failure_reason=saga.failure_reason,
        created_at=saga.created_at,
        updated_at=saga.updated_at,
    )


@router.get("/admin/sagas", response_model=SagaPage)
async def list_sagas(
    ops: Ops,
    status: SagaStatus | None = None,
    definition: Filter = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    min_age_s: Annotated[float | None, Query(ge=0, le=MAX_SECONDS, allow_inf_nan=False)] = None,
    current_step: Annotated[int | None, Query(ge=0, le=MAX_STEP)] = None,
    order_id: uuid.UUID | None = None,
    customer_id: Filter = None,
    reason: Filter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    ] = None,
) -> Any:
    f = SagaFilter(
        status, definition, version, min_age_s, current_step, order_id, customer_id, reason
    )
    try:
        page = await ops.list_sagas(f, limit=limit, cursor=cursor)
    except ValueError as exc:
        return _error(422, "invalid_request", str(exc))
    return SagaPage(
        sagas=[saga_view(s) for s in page.sagas], limit=limit, next_cursor=page.next_cursor
    )


@router.get("/admin/sagas/stuck", response_model=StuckList)
async def stuck_sagas(
    ops: Ops,
    grace_s: Seconds = 30.0,
    running_over_s: Seconds = 300.0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    found = await ops.stuck(grace_s=grace_s, running_over_s=running_over_s, limit=limit)
    return StuckList(stuck=[StuckView(saga=saga_view(s.saga), why=s.why) for s in found])


@router.get("/sagas/{saga_id}", response_model=SagaDetail, responses=NOT_FOUND)
async def get_saga(saga_id: uuid.UUID, ops: Ops) -> Any:
    """One saga by saga id or order id, with its steps and its history (timeline)."""
    saga = await ops.find(saga_id)
    if saga is None:
        return _error(404, "not_found", f"saga {saga_id} not found")
    history = await ops.timeline(saga.saga_id)
    return SagaDetail(
        **saga_view(saga).model_dump(),
        steps=[
            StepView(
                position=s.position,
                name=s.name,
                status=s.status,
                command_message_id=s.command_message_id,
            )
            for s in saga.steps
        ],
        history=[_line(h) for h in history],
    )


def _line(h: Any) -> HistoryView:
    return HistoryView(
        at=h.at,
        event=h.event,
        step=h.step,
        from_status=h.from_status,
        to_status=h.to_status,
        cause=h.cause,
        detail=h.detail,
    )


@router.post(
    "/admin/sagas/{saga_id}/cancel", status_code=202, response_model=SagaView, responses=REFUSED
)
async def cancel_saga(
    saga_id: uuid.UUID, body: CancelRequest, ops: Ops, operator: Operator = "admin-token"
) -> Any:
    try:
        saga = await ops.cancel(saga_id, who=operator, reason=body.reason)
    except LookupError:
        return _error(404, "not_found", f"saga {saga_id} not found")
    except SagaNotCancellable as exc:
        return _error(409, "not_cancellable", str(exc))
    return saga_view(saga)


@router.post(
    "/admin/sagas/{saga_id}/retry", status_code=202, response_model=SagaView, responses=REFUSED
)
async def retry_saga(
    saga_id: uuid.UUID,
    ops: Ops,
    body: RetryRequest | None = None,
    operator: Operator = "admin-token",
) -> Any:
    try:
        saga = await ops.retry(saga_id, who=operator, reason=body.reason if body else None)
    except LookupError:
        return _error(404, "not_found", f"saga {saga_id} not found")
    except SagaNotRetriable as exc:
        return _error(409, "not_retriable", str(exc))
    return saga_view(saga)
