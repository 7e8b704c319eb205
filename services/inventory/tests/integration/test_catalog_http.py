"""The catalog HTTP API on the service's own app (as bootstrap wires it), on real PostgreSQL."""

import uuid

import httpx
import pytest
from sqlalchemy import select

from inventory.adapters.orm import Product
from inventory.bootstrap import bootstrap
from inventory.settings import Settings
from sagakit.contracts import InventoryReserved, RequestedItem, ReserveInventory

pytestmark = pytest.mark.integration

WIDGET = {"product_id": "widget", "name": "Widget", "price": 1999, "currency": "USD", "stock": 10}


@pytest.fixture
async def client(inventory_sessions, inventory_url):
    service = bootstrap(Settings(database_url=inventory_url))
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://inventory",
            headers={"Authorization": "Bearer local-admin-token"},
        ) as client:
            yield client
    finally:
        await service.engine.dispose()


async def test_a_created_product_is_returned_and_readable(client) -> None:
    created = await client.post("/products", json=WIDGET)

    expected = {
        "product_id": "widget",
        "name": "Widget",
        "price": 1999,
        "currency": "USD",
        "available": 10,
        "reserved": 0,
    }
    assert created.status_code == 201, created.text
    assert created.json() == expected
    assert (await client.get("/products/widget")).json() == expected


async def test_products_are_listed_by_id(client) -> None:
    for product_id in ("gizmo", "gadget", "widget"):
        response = await client.post("/products", json={**WIDGET, "product_id": product_id})
        assert response.status_code == 201

    listed = await client.get("/products")

    assert listed.status_code == 200
    assert [p["product_id"] for p in listed.json()] == ["gadget", "gizmo", "widget"]


async def test_creating_an_existing_product_is_a_conflict_and_changes_nothing(client) -> None:
    await client.post("/products", json=WIDGET)

    again = await client.post("/products", json={**WIDGET, "price": 1, "stock": 99})

    assert again.status_code == 409
    assert again.json() == {
        "error": "conflict",
        "message": "product 'widget' already exists",
        "details": None,
    }
    product = (await client.get("/products/widget")).json()
    assert (product["price"], product["available"]) == (1999, 10)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": 19.99}, "price"),  # never a float near money
        ({"price": "1999"}, "price"),
        ({"price": -1}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"product_id": "has spaces"}, "product_id"),
        ({"product_id": "x" * 65}, "product_id"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        # PostgreSQL cannot store NUL; no other control character belongs in a one-line name.
        ({"name": "Wid\u0000get"}, "name"),
        ({"name": "Widget\n"}, "name"),
        ({"name": "\u001b[31mred"}, "name"),
        ({"name": "C1\u0085"}, "name"),
        ({"product_id": "wid\u0000get"}, "product_id"),
        ({"currency": "US\u0000"}, "currency"),
    ],
)
async def test_invalid_input_is_refused_with_the_field_named(client, change, field) -> None:
    response = await client.post("/products", json={**WIDGET, **change})

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert any(p.startswith(f"{field}: ") for p in body["details"]), body
    assert (await client.get("/products")).json() == []


async def test_a_name_in_any_script_is_stored_as_sent(client) -> None:
    name = 'Ẅídgët 🚀 — 東京 "quoted" <b>'
    created = await client.post("/products", json={**WIDGET, "name": name})

    assert created.status_code == 201, created.text
    assert (await client.get("/products/widget")).json()["name"] == name


async def test_a_missing_field_is_refused(client) -> None:
    body = {k: v for k, v in WIDGET.items() if k != "price"}
    response = await client.post("/products", json=body)

    assert response.status_code == 422
    assert response.json()["details"] == ["price: Field required"]


async def test_an_unknown_product_is_not_found(client) -> None:
    response = await client.get("/products/nope")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "product 'nope' not found",
        "details": None,
    }


async def test_restock_adds_available_units_and_counts_them_as_stock_ever_added(
    client, send, inventory_sessions
) -> None:
    await client.post("/products", json=WIDGET)
    reply = await send(
        ReserveInventory(
            order_id=uuid.uuid4(),
            items=[RequestedItem(product_id="widget", quantity=4)],
            currency="USD",
        )
    )
    assert isinstance(reply.payload, InventoryReserved)

    response = await client.post("/products/widget/stock", json={"quantity": 5})

    assert response.status_code == 200, response.text
    assert (response.json()["available"], response.json()["reserved"]) == (11, 4)
    read = (await client.get("/products/widget")).json()
    assert (read["available"], read["reserved"]) == (11, 4)
    async with inventory_sessions() as session:
        product = (await session.scalars(select(Product))).one()
        assert product.initial_stock == 15


async def test_restocking_an_unknown_product_is_not_found(client) -> None:
    response = await client.post("/products/nope/stock", json={"quantity": 5})

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "product 'nope' not found",
        "details": None,
    }


@pytest.mark.parametrize("quantity", [0, -3, 2.5, "5"])
async def test_restock_quantity_must_be_a_positive_integer(client, quantity) -> None:
    await client.post("/products", json=WIDGET)

    response = await client.post("/products/widget/stock", json={"quantity": quantity})

    assert response.status_code == 422
    assert response.json()["details"][0].startswith("quantity: ")
    assert (await client.get("/products/widget")).json()["available"] == 10


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong",
        "Basic local-admin-token",
        "Bearer local-admin-tokén".encode("latin-1"),
        "Bearer ",
    ],
)
async def test_catalog_writes_need_the_admin_token(client, authorization) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    client.headers.pop("Authorization")
    created = await client.post("/products", json=WIDGET, headers=headers)
    restocked = await client.post("/products/widget/stock", json={"quantity": 1}, headers=headers)

    assert created.status_code == restocked.status_code == 401
    assert created.json()["error"] == restocked.json()["error"] == "unauthorised"
    assert created.headers["WWW-Authenticate"] == "Bearer"
    assert created.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/products")).json() == []


@pytest.mark.parametrize("product_id", ["wid%00get", "x" * 65, "a%20b", "%C3%A9"])
async def test_a_product_id_in_the_path_is_checked_before_the_database(client, product_id) -> None:
    read = await client.get(f"/products/{product_id}")
    restocked = await client.post(f"/products/{product_id}/stock", json={"quantity": 1})

    assert read.status_code == restocked.status_code == 422, (read.text, restocked.text)
    assert read.json()["error"] == "invalid_request"


async def test_a_client_guessing_the_admin_token_is_refused_for_a_while(
    inventory_sessions, inventory_url
) -> None:
    service = bootstrap(Settings(database_url=inventory_url, admin_max_failed_logins=2))
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            for _ in range(2):
                guess = {"Authorization": "Bearer guess"}
                assert (
                    await client.post("/products", json=WIDGET, headers=guess)
                ).status_code == 401
            right = {"Authorization": "Bearer local-admin-token"}
            refused = await client.post("/products", json=WIDGET, headers=right)
            assert refused.status_code == 429
            assert refused.json()["error"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
            assert (await client.get("/products")).json() == []  # nothing was created
    finally:
        await service.engine.dispose()
