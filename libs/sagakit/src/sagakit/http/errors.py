"""One error shape for every HTTP error of every service: ``{"error", "message", "details"}``.

``install_error_handlers`` makes FastAPI's own answers (validation, body parse, 404/405, every
``HTTPException``) and unexpected exceptions use it; ``document_errors`` makes the OpenAPI say
so: every 422 is an ``ErrorBody``, every route that takes a body may answer 413.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

_CODES = {
    400: "bad_request",
    401: "unauthorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}

_DESCRIPTIONS = {
    401: "missing or wrong bearer token",
    404: "not found",
    409: "conflicts with the current state",
    413: "request body too large",
    422: "invalid request (body, parameters or JSON itself)",
    429: "too many requests; see Retry-After",
    503: "temporarily unavailable; see Retry-After",
}


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: str
    message: str
    details: list[str] | None = None


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=details)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented with the ``ErrorBody`` model."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS.get(status, "error")}
        for status in statuses
    }


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
    return f"{where}: {error['msg']}"


def install_error_handlers(app: FastAPI) -> None:
    """Validation, body-parse, 404/405, every ``HTTPException`` and any crash answer in the one
    shape; the OpenAPI documents it (``document_errors``)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_problem(e) for e in exc.errors()]
        return error_response(422, "invalid_request", "; ".join(problems), details=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        status = exc.status_code
        if status == 400:
            # FastAPI's "error parsing the body": undecodable bytes, JSON nested too deeply.
            status, code = 422, "invalid_request"
            message = "the body is not valid JSON in UTF-8 (or is nested too deeply)"
        else:
            message = str(exc.detail)
        headers = dict(exc.headers) if exc.headers else None
        return error_response(status, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback and re-raises after this answer is sent.
        return error_response(500, "internal_error", "an unexpected error; it has been logged")

    document_errors(app)


def document_errors(app: FastAPI) -> None:
    """The app's OpenAPI documents ``ErrorBody`` for 422 (FastAPI's own validation answer) and
    413 on every route with a body, instead of FastAPI's ``HTTPValidationError``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _rewrite(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite(schema: dict[str, Any]) -> None:
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    content = {"application/json": {"schema": ref}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "422" in responses or operation.get("parameters") or "requestBody" in operation:
                responses["422"] = {"description": _DESCRIPTIONS[422], "content": content}
            if "requestBody" in operation:
                responses["413"] = {"description": _DESCRIPTIONS[413], "content": content}
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
