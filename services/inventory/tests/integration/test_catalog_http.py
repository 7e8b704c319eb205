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
    assert again.json() == {"detail": "product 'widget' already exists"}
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
    ],
)
async def test_invalid_input_is_refused_with_the_field_named(client, change, field) -> None:
    response = await client.post("/products", json={**WIDGET, **change})

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(error["loc"][-1] == field and error["msg"] for error in errors), errors
    assert (await client.get("/products")).json() == []


async def test_a_missing_field_is_refused(client) -> None:
    body = {k: v for k, v in WIDGET.items() if k != "price"}
    response = await client.post("/products", json=body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "price"]


async def test_an_unknown_product_is_not_found(client) -> None:
    response = await client.get("/products/nope")

    assert response.status_code == 404
    assert response.json() == {"detail": "product 'nope' not found"}


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
    assert response.json() == {"detail": "product 'nope' not found"}


@pytest.mark.parametrize("quantity", [0, -3, 2.5, "5"])
async def test_restock_quantity_must_be_a_positive_integer(client, quantity) -> None:
    await client.post("/products", json=WIDGET)

    response = await client.post("/products/widget/stock", json={"quantity": quantity})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "quantity"]
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
    assert created.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/products")).json() == []
