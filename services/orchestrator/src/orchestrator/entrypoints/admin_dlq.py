"""The admin API of the dead-letter topics (bearer ``ADMIN_TOKEN``, operator in ``X-Operator``):
counts per DLQ, records (paged), one record, replay (one or a filtered set), discard.

Records are named by where they sit: ``/admin/dlq/{dlq topic}/{partition}/{offset}`` (the topic
may also be given as its source topic, ``inventory.commands`` for ``inventory.commands.dlq``).
Every action is audited in ``admin_actions`` (``target`` = ``dlq:<topic>/<partition>/<offset>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from orchestrator.entrypoints.admin_api import ERRORS, Operator, require_admin
from orchestrator.service_layer.dead_letters import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetters,
    DeadLettersUnavailable,
    NotReplayable,
    RecordRef,
    ReplayOutcome,
    value_text,
)
from sagakit.http.errors import ErrorBody, error_responses


class FromDataclass(BaseModel):
    """A view read from a service-layer dataclass (``model_validate(obj)``): its fields are
    the dataclass's attributes (properties included), so there is one list of them."""

    model_config = ConfigDict(from_attributes=True)


class DlqTopicView(FromDataclass):
    topic: str
    source_topic: str
    exists: bool
    records: int
    replayed: int
    discarded: int
    unreplayed: int


class DlqSummary(BaseModel):
    topics: list[DlqTopicView]
    unreplayed: int


class DispositionView(FromDataclass):
    disposition: Literal["replayed", "discarded"]
    operator: str
    at: datetime
    reason: str | None
    replayed_to: str | None


class DeadLetterView(FromDataclass):
    topic: str
    partition: int
    offset: int
    ref: Annotated[str, BeforeValidator(str)]  # "<topic>/<partition>/<offset>"
    timestamp: datetime
    key: str | None
    original_topic: str
    error_code: str | None
    reason: str | None
    consumer_group: str | None
    failed_at: datetime | None
    message_type: str | None
    message_id: str | None
    saga_id: str | None
    replay_count: int
    replayed_from: str | None
    state: Literal["unreplayed", "replayed", "discarded"]
    disposition: DispositionView | None


class DeadLetterDetail(DeadLetterView):
    headers: dict[str, str]
    value: str | None  # the value as text (UTF-8, undecodable bytes replaced)

    @field_validator("value", mode="before")
    @classmethod
    def as_text(cls, v: object) -> object:
        return value_text(v) if isinstance(v, bytes) else v


class DeadLetterPageView(BaseModel):
    records: list[DeadLetterView]
    limit: int
    next_cursor: str | None


class RecordRefBody(BaseModel):
    topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]


class ReplayFilter(BaseModel):
    topic: str | None = None
    reason: Annotated[str | None, Field(max_length=200)] = None
    partition: Annotated[int | None, Field(ge=0)] = None
    min_offset: Annotated[int | None, Field(ge=0)] = None
    max_offset: Annotated[int | None, Field(ge=0)] = None


class ReplayRequest(BaseModel):
    """Either one record (``record``) or a filter (``filter``): the filtered set is replayed
    up to ``limit`` records per call, skipping records replayed, discarded or that came back
    after a replay; call again with ``cursor`` while ``next_cursor`` is not null."""

    record: RecordRefBody | None = None
    filter: ReplayFilter | None = None
    reason: Annotated[str | None, Field(max_length=1000)] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    cursor: str | None = None

    @model_validator(mode="after")
    def one_target(self) -> ReplayRequest:
        if (self.record is None) == (self.filter is None):
            raise ValueError("give exactly one of 'record' and 'filter'")
        return self


class ReplayedView(FromDataclass):
    ref: Annotated[str, BeforeValidator(str)]
    replayed_to: str | None
    refused: str | None


class ReplayResult(BaseModel):
    replayed: list[ReplayedView]
    skipped: list[ReplayedView]
    next_cursor: str | None


class DiscardRequest(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Kafka did not answer"}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "already replayed or discarded, an alert (retry the saga), or out of "
        "replays",
    }
}


def dead_letters(request: Request) -> DeadLetters:
    found: DeadLetters | None = request.app.state.api.dead_letters
    if found is None:
        raise DeadLettersUnavailable("the dead-letter operations are not configured")
    return found


# Kafka offsets and partitions are int64/int32: bounded so an absurd query is a 422, not a 500.
MAX_OFFSET = 2**63 - 1
MAX_PARTITION = 2**31 - 1

Dlq = Annotated[DeadLetters, Depends(dead_letters)]

router = APIRouter(
    dependencies=[Depends(require_admin)],
    # 404: a topic that is not one of the system's, or a record that is not in it.
    responses={**ERRORS, **UNAVAILABLE, **error_responses(404)},
    tags=["admin: dead letters"],
)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _unavailable(exc: DeadLettersUnavailable) -> JSONResponse:
    return _error(503, "dlq_unavailable", str(exc))


def letter_view(d: DeadLetter) -> DeadLetterView:
    return DeadLetterView.model_validate(d)


def letter_detail(d: DeadLetter) -> DeadLetterDetail:
    return DeadLetterDetail.model_validate(d)


def _replayed(o: ReplayOutcome) -> ReplayedView:
    return ReplayedView.model_validate(o)


@router.get("/admin/dlq", response_model=DlqSummary)
async def dlq_summary(dlq: Dlq) -> Any:
    """Every dead-letter topic of the system: records, replayed, discarded, unreplayed."""
    try:
        topics = await dlq.summary()
    except DeadLettersUnavailable as exc:
        return _unavailable(exc)
    views = [DlqTopicView.model_validate(t) for t in topics]
    return DlqSummary(topics=views, unreplayed=sum(v.unreplayed for v in views))


@router.get("/admin/dlq/{topic}", response_model=DeadLetterPageView)
async def dlq_records(
    topic: str,
    dlq: Dlq,
    reason: Annotated[str | None, Query(max_length=200)] = None,
    partition: Annotated[int | None, Query(ge=0, le=MAX_PARTITION)] = None,
    min_offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    max_offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    state: Literal["unreplayed", "replayed", "discarded"] | None = None,
    returned: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Any:
    """A DLQ's records, oldest first, with their reason headers and dispositions."""
    f = DeadLetterFilter(topic, reason, partition, min_offset, max_offset, state, returned)
    try:
        page = await dlq.list_records(f, limit=limit, cursor=cursor)
    except LookupError as exc:
        return _error(404, "not_found", str(exc))
    except ValueError as exc:
        return _error(422, "invalid_request", str(exc))
    except DeadLettersUnavailable as exc:
        return _unavailable(exc)
    return DeadLetterPageView(
        records=[letter_view(r) for r in page.records], limit=limit, next_cursor=page.next_cursor
    )


@router.get("/admin/dlq/{topic}/{partition}/{offset}", response_model=DeadLetterDetail)
async def dlq_record(topic: str, partition: int, offset: int, dlq: Dlq) -> Any:
    """One record: every header and its value as text."""
    try:
        record = await dlq.get(RecordRef(topic, partition, offset))
    except LookupError as exc:
        return _error(404, "not_found", str(exc))
    except DeadLettersUnavailable as exc:
        return _unavailable(exc)
    return letter_detail(record)


@router.post("/admin/dlq/replay", response_model=ReplayResult, responses=REFUSED)
async def dlq_replay(body: ReplayRequest, dlq: Dlq, operator: Operator = "admin-token") -> Any:
    """Replay one record, or up to ``limit`` records of a filter, to their original topic."""
    try:
        if body.record is not None:
            ref = RecordRef(body.record.topic, body.record.partition, body.record.offset)
            if not ref.topic.endswith(".dlq"):
                ref = RecordRef(dlq.dlq_topic(ref.topic), ref.partition, ref.offset)
            outcome = await dlq.replay(ref, who=operator, reason=body.reason)
            return ReplayResult(replayed=[_replayed(outcome)], skipped=[], next_cursor=None)
        assert body.filter is not None
        f = DeadLetterFilter(
            topic=body.filter.topic,
            reason=body.filter.reason,
            partition=body.filter.partition,
            min_offset=body.filter.min_offset,
            max_offset=body.filter.max_offset,
        )
        report = await dlq.replay_matching(
            f, who=operator, reason=body.reason, limit=body.limit, cursor=body.cursor
        )
    except LookupError as exc:
        return _error(404, "not_found", str(exc))
    except NotReplayable as exc:
        return _error(409, exc.code, str(exc))
    except ValueError as exc:
        return _error(422, "invalid_request", str(exc))
    except DeadLettersUnavailable as exc:
        return _unavailable(exc)
    return ReplayResult(
        replayed=[_replayed(o) for o in report.replayed],
        skipped=[_replayed(o) for o in report.skipped],
        next_cursor=report.next_cursor,
    )


@router.post(
    "/admin/dlq/{topic}/{partition}/{offset}/discard",
    response_model=DeadLetterView,
    responses=REFUSED,
)
async def dlq_discard(
    topic: str,
    partition: int,
    offset: int,
    body: DiscardRequest,
    dlq: Dlq,
    operator: Operator = "admin-token",
) -> Any:
    """Mark a record as dealt with (never replayed), with a reason."""
    try:
        ref = RecordRef(dlq.dlq_topic(topic), partition, offset)
        record = await dlq.discard(ref, who=operator, reason=body.reason)
    except LookupError as exc:
        return _error(404, "not_found", str(exc))
    except NotReplayable as exc:
        return _error(409, exc.code, str(exc))
    except DeadLettersUnavailable as exc:
        return _unavailable(exc)
    return letter_view(record)
