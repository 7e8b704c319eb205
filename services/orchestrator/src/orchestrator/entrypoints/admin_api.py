"""The admin API (bearer ``ADMIN_TOKEN``): find sagas, read timelines, find stuck sagas,
cancel and retry. Every action is audited in ``admin_actions``; the operator is the
``X-Operator`` header (default: ``admin-token``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from orchestrator.domain.engine import SagaNotCancellable, SagaNotRetriable
from orchestrator.domain.saga import SagaState
from orchestrator.domain.status import SagaStatus
from orchestrator.service_layer.operations import Operations, SagaFilter
from sagakit.ops.auth import bearer_matches


class AdminAuthError(Exception):
    pass


class ErrorBody(BaseModel):
    error: str
    message: str
    details: list[str] | None = None


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
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class RetryRequest(BaseModel):
    reason: Annotated[str | None, Field(max_length=1000)] = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
    404: {"model": ErrorBody, "description": "no such saga"},
    422: {"model": ErrorBody, "description": "invalid request"},
}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the action does not apply to the saga's status"}
}


def _ctx(request: Request) -> Any:
    return request.app.state.api


async def require_admin(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    if not bearer_matches(authorization, _ctx(request).admin_token):
        raise AdminAuthError


def operations(request: Request) -> Operations:
    ctx = _ctx(request)
    return Operations(ctx.uow, ctx.sagas)


Ops = Annotated[Operations, Depends(operations)]
Operator = Annotated[str, Header(alias="X-Operator", min_length=1, max_length=200)]

router = APIRouter(dependencies=[Depends(require_admin)], responses=ERRORS, tags=["admin"])


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


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
    definition: str | None = None,
    version: int | None = None,
    min_age_s: Annotated[float | None, Query(ge=0)] = None,
    current_step: int | None = None,
    order_id: uuid.UUID | None = None,
    customer_id: str | None = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
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
    grace_s: Annotated[float, Query(ge=0)] = 30.0,
    running_over_s: Annotated[float, Query(ge=0)] = 300.0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    found = await ops.stuck(grace_s=grace_s, running_over_s=running_over_s, limit=limit)
    return StuckList(stuck=[StuckView(saga=saga_view(s.saga), why=s.why) for s in found])


@router.get("/sagas/{saga_id}", response_model=SagaDetail)
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
