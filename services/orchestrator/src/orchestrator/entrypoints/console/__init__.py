"""The web console under ``/console``: server-rendered pages over the operations service layer.

Sagas with filters and live counts by status, one saga with its workflow drawn from its
definition (the path it took highlighted) and its timeline, cancel and retry, the stuck list.
Everything it does goes through ``Operations`` (the admin API's service layer): no logic of its
own. No JavaScript framework and nothing from the internet: Jinja2 templates, one stylesheet,
a few lines of plain JS for live updates (server-sent events) and the confirmation dialogs.

Login: the operator's name and ``ADMIN_TOKEN`` in a form; the session is a cookie (HttpOnly,
SameSite=Strict, 8 hours) signed with the token, so changing the token ends every session.
Every POST carries a CSRF token derived from the session and is refused if its Origin is not
this site.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from orchestrator.domain.diagram import graph
from orchestrator.domain.engine import OperatorRefused
from orchestrator.domain.saga import SagaState
from orchestrator.domain.status import ORDER_STATUS_FOR, SagaStatus
from orchestrator.domain.svg import Moment, saga_path, svg
from orchestrator.service_layer.dead_letters import (
    DeadLetterFilter,
    DeadLetters,
    DeadLettersUnavailable,
    NotReplayable,
    RecordRef,
)
from orchestrator.service_layer.operations import Operations, SagaFilter, TimelineLine
from sagakit.ops.auth import FailedLogins, client_address, locked_out

HERE = Path(__file__).parent
COOKIE = "console_session"
SESSION_S = 8 * 3600
LIVE_STREAM_S = 60.0  # a live stream ends after this; the browser's EventSource reconnects
PAGE_SIZE = 50
STATUSES = list(SagaStatus)

templates = Jinja2Templates(directory=HERE / "templates")
_MESSAGE_CAUSE = re.compile(r"^(?P<type>\w+) (?P<id>[0-9a-f-]{36})$")


def _cause(cause: str | None) -> Markup:
    """``"PaymentDeclined <uuid>"`` (a message and its id) as the type and a short id."""
    if not cause:
        return Markup("")
    found = _MESSAGE_CAUSE.match(cause)
    if found is None:
        return escape(cause)
    return Markup('{} <code class="id" title="{}">{}</code>').format(
        found["type"], found["id"], found["id"][:8]
    )


templates.env.filters["cause"] = _cause


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


@dataclass(frozen=True)
class Session:
    operator: str
    csrf: str


# --- sessions ----------------------------------------------------------------------------------


def _token(request: Request) -> str:
    token: str = request.app.state.api.admin_token
    return token


def _sign(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def _session_cookie(token: str, operator: str, now: float) -> str:
    expires = int(now) + SESSION_S
    payload = f"{operator}|{expires}"
    signed = f"{payload}|{_sign(token, 'session|' + payload)}"
    return base64.urlsafe_b64encode(signed.encode()).decode()


def _read_session(token: str, cookie: str | None, now: float) -> Session | None:
    if not cookie or not token:
        return None
    try:
        operator, expires, signature = base64.urlsafe_b64decode(cookie).decode().rsplit("|", 2)
        expired = int(expires) < now
    except (ValueError, UnicodeDecodeError):
        return None
    expected = _sign(token, f"session|{operator}|{expires}")
    if expired or not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return Session(operator, _sign(token, "csrf|" + cookie)[:32])


def session(request: Request) -> Session:
    found = _read_session(_token(request), request.cookies.get(COOKIE), time.time())
    if found is None:
        query = request.url.query
        raise LoginRequired(request.url.path + (f"?{query}" if query else ""))
    return found


Authed = Annotated[Session, Depends(session)]


def operations(request: Request) -> Operations:
    ctx = request.app.state.api
    return Operations(ctx.uow, ctx.sagas)


Ops = Annotated[Operations, Depends(operations)]


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (python-multipart is not needed for that)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if referer is None:
            return origin is None  # a client that sends neither (curl): the CSRF token decides
        origin = referer
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", request.url.netloc)


async def checked_form(request: Request, who: Session) -> dict[str, str] | None:
    """The form of a POST if it comes from a console page (same origin, right CSRF token)."""
    form = await _form(request)
    given = form.get("csrf", "")
    if not _same_origin(request) or not hmac.compare_digest(given.encode(), who.csrf.encode()):
        return None
    return form


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/sagas"


# --- pages ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/console", include_in_schema=False)


def page(
    request: Request, name: str, who: Session | None, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        name,
        {"who": who, "statuses": STATUSES, "order_status_for": ORDER_STATUS_FOR, **context},
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'"
    )
    return response


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/console/sagas", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    token = _token(request)
    operator = form.get("operator", "").strip()[:100]
    given = form.get("token", "")
    limiter: FailedLogins = request.app.state.api.failed_logins
    client = client_address(request)
    wait = locked_out(limiter, client, "console")
    if wait is not None:
        refused = page(
            request,
            "login.html",
            None,
            next=_safe_next(form.get("next")),
            error=f"Too many wrong tokens from your address: try again in {wait} s.",
            operator=operator,
            status_code=429,
        )
        refused.headers["Retry-After"] = str(wait)
        return refused
    ok = bool(token) and hmac.compare_digest(given.encode(), token.encode())
    if given:
        limiter.record(client, ok=ok, surface="console")
    if not ok or not operator or "|" in operator:
        error = "Wrong token." if not ok else "Say who you are (your name, without '|')."
        return page(
            request,
            "login.html",
            None,
            next=_safe_next(form.get("next")),
            error=error,
            operator=operator,
            status_code=401,
        )
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        COOKIE,
        _session_cookie(token, operator, time.time()),
        max_age=SESSION_S,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, who: Authed) -> Response:
    if await checked_form(request, who) is None:
        return _forbidden(request, who)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


def _forbidden(request: Request, who: Session) -> HTMLResponse:
    return page(
        request,
        "message.html",
        who,
        title="Refused",
        message="This form did not come from a console page (cross-site request). Reload and "
        "try again.",
        status_code=403,
    )


def _filters(
    status: str | None,
    definition: str | None,
    customer_id: str | None,
    order_id: str | None,
    reason: str | None,
    min_age_s: str | None,
) -> tuple[SagaFilter, dict[str, str], list[str]]:
    given = {
        "status": status,
        "definition": definition,
        "customer_id": customer_id,
        "order_id": order_id,
        "reason": reason,
        "min_age_s": min_age_s,
    }
    values = {k: v.strip() for k, v in given.items() if v and v.strip()}
    problems = []
    saga_status = None
    if "status" in values:
        try:
            saga_status = SagaStatus(values["status"])
        except ValueError:
            problems.append(f"unknown status {values['status']!r}")
    name, version = None, None
    if "definition" in values:
        name, _, v = values["definition"].partition(" v")
        version = int(v) if v.isdigit() else None
    order = None
    if "order_id" in values:
        try:
            order = uuid.UUID(values["order_id"])
        except ValueError:
            problems.append("order or saga id: not a UUID")
    age = None
    if "min_age_s" in values:
        try:
            age = max(0.0, float(values["min_age_s"]))
        except ValueError:
            problems.append("older than: not a number of seconds")
    f = SagaFilter(
        status=saga_status,
        definition=name,
        version=version,
        min_age_s=age,
        order_id=order,
        customer_id=values.get("customer_id"),
        reason=values.get("reason", "")[:200] or None,
    )
    return f, values, problems


@router.get("/sagas")
async def sagas_page(
    request: Request,
    who: Authed,
    ops: Ops,
    status: str | None = None,
    definition: str | None = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    order_id: str | None = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
    min_age_s: str | None = None,
    cursor: str | None = None,
) -> Response:
    f, values, problems = _filters(status, definition, customer_id, order_id, reason, min_age_s)
    if f.order_id is not None and not problems:
        # An id pasted into the filter: the saga itself, if it is one.
        found = await ops.find(f.order_id)
        if found is not None and found.saga_id == f.order_id:
            return RedirectResponse(f"/console/sagas/{found.saga_id}", status_code=303)
    sagas: list[SagaState] = []
    next_cursor = None
    if not problems:
        try:
            result = await ops.list_sagas(f, limit=PAGE_SIZE, cursor=cursor)
            sagas, next_cursor = result.sagas, result.next_cursor
        except ValueError as exc:
            problems.append(str(exc))
    counts = await ops.counts()
    definitions = sorted(
        {f"{d.name} v{d.version}" for d in request.app.state.api.sagas.engine.workflows}
    )
    return page(
        request,
        "sagas.html",
        who,
        sagas=sagas,
        counts=counts,
        total=sum(counts.values()),
        filters=values,
        problems=problems,
        definitions=definitions,
        next_url=(
            f"/console/sagas?{urlencode({**values, 'cursor': next_cursor})}"
            if next_cursor
            else None
        ),
        paged=cursor is not None,
        now=datetime.now(UTC),
    )


@router.get("/stuck")
async def stuck_page(
    request: Request,
    who: Authed,
    ops: Ops,
    grace_s: Annotated[float, Query(ge=0)] = 30.0,
    running_over_s: Annotated[float, Query(ge=0)] = 300.0,
) -> HTMLResponse:
    found = await ops.stuck(grace_s=grace_s, running_over_s=running_over_s)
    return page(
        request,
        "stuck.html",
        who,
        stuck=found,
        grace_s=grace_s,
        running_over_s=running_over_s,
        now=datetime.now(UTC),
    )


@router.get("/sagas/{saga_id}")
async def saga_page(
    request: Request, saga_id: uuid.UUID, who: Authed, ops: Ops, notice: str | None = None
) -> Response:
    saga = await ops.find(saga_id)
    if saga is None:
        return page(
            request,
            "message.html",
            who,
            title="Not found",
            message=f"No saga and no order has the id {saga_id}.",
            status_code=404,
        )
    if saga.saga_id != saga_id:  # an order id: the saga's own address
        return RedirectResponse(f"/console/sagas/{saga.saga_id}", status_code=303)
    return await _saga(request, who, ops, saga, notice=notice)


async def _saga(
    request: Request,
    who: Session,
    ops: Operations,
    saga: SagaState,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    timeline = await ops.timeline(saga.saga_id)
    actions = await ops.actions(target=f"saga:{saga.saga_id}", limit=20)
    return page(
        request,
        "saga.html",
        who,
        saga=saga,
        diagram=_diagram(request, saga, timeline),
        timeline=timeline,
        actions=actions,
        notice=_NOTICES.get(notice or ""),
        error=error,
        status_code=status_code,
        now=datetime.now(UTC),
    )


_NOTICES = {
    "cancelled": "Cancelled: the saga stopped waiting and compensates what it did.",
    "retried": "Retrying: compensation starts over now.",
}


def _diagram(request: Request, saga: SagaState, timeline: list[TimelineLine]) -> str | None:
    try:
        definition = request.app.state.api.sagas.engine.workflows.get(
            saga.definition_name, saga.definition_version
        )
    except LookupError:
        return None  # a version no longer deployed: the page says so
    chart = graph(definition)
    path = saga_path(
        chart,
        [Moment(line.event, line.step, line.to_status) for line in timeline],
        status=saga.status,
        step_statuses=[(s.name, s.status) for s in saga.steps],
    )
    return svg(chart, path, title=f"{definition.name} v{definition.version}")


@router.post("/sagas/{saga_id}/{action}")
async def act(request: Request, saga_id: uuid.UUID, action: str, who: Authed, ops: Ops) -> Response:
    if action not in ("cancel", "retry"):
        return page(
            request,
            "message.html",
            who,
            title="Not found",
            message="No such action.",
            status_code=404,
        )
    form = await checked_form(request, who)
    if form is None:
        return _forbidden(request, who)
    reason = form.get("reason", "").strip()[:1000]
    try:
        if action == "cancel":
            if not reason:
                raise ValueError("A cancel needs a reason (it goes into the saga's history).")
            await ops.cancel(saga_id, who=who.operator, reason=reason)
        else:
            await ops.retry(saga_id, who=who.operator, reason=reason or None)
    except LookupError:
        return page(
            request,
            "message.html",
            who,
            title="Not found",
            message=f"No saga has the id {saga_id}.",
            status_code=404,
        )
    except (OperatorRefused, ValueError) as exc:
        saga = await ops.find(saga_id)
        assert saga is not None
        return await _saga(request, who, ops, saga, error=str(exc), status_code=409)
    done = "cancelled" if action == "cancel" else "retried"
    return RedirectResponse(f"/console/sagas/{saga_id}?notice={done}", status_code=303)


# --- dead letters ------------------------------------------------------------------------------

_DLQ_NOTICES = {
    "replayed": "Replayed: the record is back on its original topic (replayed-from header added).",
    "discarded": "Discarded: the record is marked as dealt with and will not be replayed.",
}


def _dead_letters(request: Request) -> DeadLetters | None:
    found: DeadLetters | None = request.app.state.api.dead_letters
    return found


@router.get("/dlq")
async def dlq_page(
    request: Request,
    who: Authed,
    topic: str | None = None,
    state: str | None = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
    cursor: str | None = None,
    notice: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    dlq = _dead_letters(request)
    values = {k: v for k, v in {"topic": topic, "state": state, "reason": reason}.items() if v}
    problems: list[str] = [error] if error else []
    summary, records, next_cursor = [], [], None
    if dlq is None:
        problems.append("The dead-letter operations are not configured in this orchestrator.")
    else:
        try:
            summary = await dlq.summary()
            f = DeadLetterFilter(
                topic=topic or None,
                reason=reason or None,
                state=state if state in ("unreplayed", "replayed", "discarded") else None,  # type: ignore[arg-type]
            )
            found = await dlq.list_records(f, limit=PAGE_SIZE, cursor=cursor)
            records, next_cursor = found.records, found.next_cursor
        except (LookupError, ValueError) as exc:
            problems.append(str(exc))
        except DeadLettersUnavailable as exc:
            problems.append(f"Kafka did not answer: {exc}")
    return page(
        request,
        "dlq.html",
        who,
        summary=summary,
        records=records,
        filters=values,
        problems=problems,
        notice=_DLQ_NOTICES.get(notice or ""),
        next_url=(
            f"/console/dlq?{urlencode({**values, 'cursor': next_cursor})}" if next_cursor else None
        ),
        back=f"/console/dlq?{urlencode(values)}",
    )


@router.post("/dlq/{action}")
async def dlq_act(request: Request, action: str, who: Authed) -> Response:
    dlq = _dead_letters(request)
    form = await checked_form(request, who)
    if form is None:
        return _forbidden(request, who)
    if dlq is None or action not in ("replay", "discard"):
        return page(
            request, "message.html", who, title="Not found", message="No such action.",
            status_code=404,
        )  # fmt: skip
    back = _safe_next(form.get("back") or "/console/dlq")
    reason = form.get("reason", "").strip()[:1000]
    try:
        ref = RecordRef.parse(form.get("ref", ""))
        if action == "replay":
            await dlq.replay(ref, who=who.operator, reason=reason or None)
        else:
            if not reason:
                raise ValueError("A discard needs a reason.")
            await dlq.discard(ref, who=who.operator, reason=reason)
    except (LookupError, ValueError, NotReplayable, DeadLettersUnavailable) as exc:
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}{urlencode({'error': str(exc)})}", 303)
    done = "replayed" if action == "replay" else "discarded"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}notice={done}", status_code=303)


# --- live updates (server-sent events) -------------------------------------------------------


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def _poll(request: Request, read: Any, event: str, interval_s: float) -> AsyncIterator[bytes]:
    """Send ``read()`` whenever it changes, for LIVE_STREAM_S at most (then the browser
    reconnects), a comment every 15 s so proxies keep the stream open."""
    last: Any = None
    started = quiet = time.monotonic()
    yield b"retry: 2000\n\n"
    while time.monotonic() - started < LIVE_STREAM_S:
        if await request.is_disconnected():
            return
        value = await read()
        if value != last:
            last, quiet = value, time.monotonic()
            yield _sse(event, value)
        elif time.monotonic() - quiet > 15:
            quiet = time.monotonic()
            yield b": heartbeat\n\n"
        await asyncio.sleep(interval_s)


def _stream(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/live/counts")
async def live_counts(request: Request, _who: Authed, ops: Ops) -> StreamingResponse:
    async def read() -> dict[str, int]:
        counts = await ops.counts()
        return {"total": sum(counts.values()), **{s.value: counts.get(s, 0) for s in STATUSES}}

    return _stream(_poll(request, read, "counts", 2.0))


@router.get("/live/sagas/{saga_id}")
async def live_saga(
    request: Request, saga_id: uuid.UUID, _who: Authed, ops: Ops
) -> StreamingResponse:
    async def read() -> list[Any] | None:
        saga = await ops.find(saga_id)
        if saga is None:
            return None
        stamp = saga.updated_at.isoformat() if saga.updated_at else None
        return [saga.status, saga.current_step, stamp]

    return _stream(_poll(request, read, "saga", 1.0))


# --- wiring --------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(LoginRequired)
    async def to_login(_request: Request, exc: LoginRequired) -> Response:
        if _request.url.path.startswith("/console/live/"):
            return Response(status_code=401)
        return RedirectResponse(f"/console/login?{urlencode({'next': exc.next_url})}", 303)
