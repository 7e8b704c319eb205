"""Every HTTP error answers ``{"error", "message", "details"}``."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from sagakit.http.errors import install_error_handlers

pytestmark = pytest.mark.unit


class Body(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/things/{n}")
    async def read(n: int) -> dict[str, int]:
        raise HTTPException(409, detail=f"thing {n} is busy")

    @app.get("/crash")
    async def crash() -> dict[str, int]:
        raise RuntimeError("boom")

    return app


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "code"),
    [
        ("POST", "/things", b'{"name": 1}', 422, "invalid_request"),
        ("POST", "/things", b'{"name": ', 422, "invalid_request"),
        ("POST", "/things", b"\xff\xfe", 422, "invalid_request"),
        ("GET", "/nowhere", None, 404, "not_found"),
        ("DELETE", "/things", None, 405, "method_not_allowed"),
        ("GET", "/things/1", None, 409, "conflict"),
        ("GET", "/crash", None, 500, "internal_error"),
        ("POST", "/things", b"[" * 5000 + b"]" * 5000, 422, "invalid_request"),
    ],
)
async def test_every_error_has_the_one_shape(
    method: str, path: str, content: bytes | None, status: int, code: str
) -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(
            method, path, content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code


def test_the_openapi_declares_the_error_body_not_fastapis() -> None:
    spec = _app().openapi()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    post = spec["paths"]["/things"]["post"]["responses"]
    for status in ("422", "413"):
        assert post[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
