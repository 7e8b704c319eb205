"""OpenAPI links: declared once, published under the source's answer, refused when wrong."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from sagakit.http.errors import install_error_handlers
from sagakit.http.links import InvalidLink, Link, declare_links

pytestmark = pytest.mark.unit


class Created(BaseModel):
    thing_id: uuid.UUID
    owner: Owner


class Owner(BaseModel):
    owner_id: str


Created.model_rebuild()


def _app(*links: Link) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things", status_code=201, response_model=Created)
    async def create_thing() -> Any:
        return None

    @app.get("/things/{thing_id}")
    async def get_thing(thing_id: uuid.UUID, verbose: bool = False) -> dict[str, str]:
        return {}

    @app.get("/owners/{owner_id}/things/{thing_id}")
    async def owned_thing(owner_id: str, thing_id: uuid.UUID) -> dict[str, str]:
        return {}

    declare_links(app, links)
    return app


GET = Link("POST /things", 201, "GET /things/{thing_id}", {"thing_id": "$response.body#/thing_id"})


def test_a_link_is_published_under_the_source_answer_and_names_the_target() -> None:
    owned = Link(
        "POST /things",
        201,
        "GET /owners/{owner_id}/things/{thing_id}",
        {"owner_id": "$response.body#/owner/owner_id", "thing_id": "$response.body#/thing_id"},
        "the thing under its owner",
    )
    schema = _app(GET, owned).openapi()

    links = schema["paths"]["/things"]["post"]["responses"]["201"]["links"]
    assert links == {
        "GetThing": {
            "operationId": schema["paths"]["/things/{thing_id}"]["get"]["operationId"],
            "parameters": {"thing_id": "$response.body#/thing_id"},
        },
        "OwnedThing": {
            "operationId": schema["paths"]["/owners/{owner_id}/things/{thing_id}"]["get"][
                "operationId"
            ],
            "parameters": {
                "owner_id": "$response.body#/owner/owner_id",
                "thing_id": "$response.body#/thing_id",
            },
            "description": "the thing under its owner",
        },
    }
    assert _app(GET).openapi() == _app(GET).openapi()  # built once, the same each time


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        (Link("POST /nowhere", 201, "GET /things/{thing_id}"), "no operation 'POST /nowhere'"),
        (Link("POST /things", 200, GET.target, GET.parameters), "documents no 200 answer"),
        (Link("POST /things", 201, "DELETE /things/{thing_id}"), "no operation"),
        (Link("POST /things", 201, GET.target, {"id": "$response.body#/thing_id"}), "no parameter"),
        (Link("POST /things", 201, GET.target, {}), "thing_id are left unset"),
        (
            Link("POST /things", 201, GET.target, {"thing_id": "$response.body#/id"}),
            "has no $response.body#/id",
        ),
        (
            Link("POST /things", 201, GET.target, {"thing_id": "$response.body#/owner/id"}),
            "has no $response.body#/owner/id",
        ),
        (
            Link("POST /things", 201, GET.target, {"thing_id": "$request.path.thing_id"}),
            "no path parameter 'thing_id'",
        ),
        (Link("POST /things", 201, GET.target, {"thing_id": "thing"}), "unsupported expression"),
    ],
)
def test_a_wrong_link_is_refused_when_the_document_is_built(link: Link, problem: str) -> None:
    with pytest.raises(InvalidLink, match=problem.replace("$", r"\$").replace("'", ".")):
        _app(link).openapi()


def test_the_same_link_twice_is_refused() -> None:
    with pytest.raises(InvalidLink, match="declared twice"):
        _app(GET, GET).openapi()
