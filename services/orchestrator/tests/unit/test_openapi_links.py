"""The orchestrator's OpenAPI carries its links (a wrong one would make the document fail)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.entrypoints import api
from sagakit.ops.http import build_ops_app

pytestmark = pytest.mark.unit


def _links(schema: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    links: dict[str, Any] = schema["paths"][path][method]["responses"][status]["links"]
    return links


def test_an_order_links_to_its_status_live_status_saga_and_the_actions_on_it() -> None:
    app = build_ops_app("orchestrator", {})
    api.install(app, None, max_body_bytes=1024)  # type: ignore[arg-type]  # the routes only
    schema = app.openapi()

    placed = _links(schema, "post", "/orders", "202")
    assert set(placed) == {"GetOrder", "OrderEvents", "GetSaga", "CancelSaga", "RetrySaga"}
    assert placed["GetOrder"]["parameters"] == {"order_id": "$response.body#/order_id"}
    assert placed["CancelSaga"]["parameters"] == {"saga_id": "$response.body#/saga_id"}
    assert set(_links(schema, "get", "/sagas/{saga_id}", "200")) == {
        "GetOrder",
        "CancelSaga",
        "RetrySaga",
    }
    for action in ("cancel", "retry"):
        assert "GetSaga" in _links(schema, "post", f"/admin/sagas/{{saga_id}}/{action}", "202")
