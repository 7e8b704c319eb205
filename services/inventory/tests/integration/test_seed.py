"""The seed entrypoint: adds the sample catalog once, and resets it only when nothing is held."""

import asyncio
import os
import sys
import uuid

import pytest

from inventory.entrypoints.seed import SAMPLE_CATALOG, run
from sagakit.contracts import InventoryReserved, ReleaseInventory, RequestedItem, ReserveInventory

pytestmark = pytest.mark.integration

SEED_STOCK = {p.product_id: p.stock for p in SAMPLE_CATALOG}


async def reserve(send, product_id: str, quantity: int) -> uuid.UUID:
    order_id = uuid.uuid4()
    reply = await send(
        ReserveInventory(
            order_id=order_id,
            items=[RequestedItem(product_id=product_id, quantity=quantity)],
            currency="USD",
        )
    )
    assert isinstance(reply.payload, InventoryReserved)
    return order_id


async def test_seeding_adds_the_catalog_once_and_leaves_existing_products_alone(
    inventory_sessions, inventory_url, send, stock_of, capsys
) -> None:
    assert await run(inventory_url, reset=False, products=SAMPLE_CATALOG) == 0
    out = capsys.readouterr().out
    assert "added widget: stock 1000" in out
    for product_id, stock in SEED_STOCK.items():
        assert await stock_of(product_id) == (stock, 0)

    await reserve(send, "widget", 5)
    assert await run(inventory_url, reset=False, products=SAMPLE_CATALOG) == 0

    out = capsys.readouterr().out
    assert "kept widget" in out
    assert "added" not in out
    assert await stock_of("widget") == (995, 5)


async def test_reset_restores_seed_stock_when_nothing_is_held(
    inventory_sessions, inventory_url, send, stock_of, add_products, capsys
) -> None:
    await add_products(("gadget", 4999, "USD", 3))  # exists with other stock; the rest missing
    order_id = await reserve(send, "gadget", 2)
    await send(ReleaseInventory(order_id=order_id))  # released: nothing held any more

    assert await run(inventory_url, reset=True, products=SAMPLE_CATALOG) == 0

    out = capsys.readouterr().out
    assert "reset gadget: stock 500" in out
    assert "added widget: stock 1000" in out
    for product_id, stock in SEED_STOCK.items():
        assert await stock_of(product_id) == (stock, 0)  # stock_of also checks the books balance


async def test_reset_refuses_a_product_with_units_held_and_resets_the_others(
    inventory_sessions, inventory_url, send, stock_of, capsys
) -> None:
    await run(inventory_url, reset=False, products=SAMPLE_CATALOG)
    await reserve(send, "limited-edition", 4)
    order_id = await reserve(send, "widget", 7)
    await send(ReleaseInventory(order_id=order_id))
    await reserve(send, "gizmo", 1)
    capsys.readouterr()

    assert await run(inventory_url, reset=True, products=SAMPLE_CATALOG) == 1

    captured = capsys.readouterr()
    assert "not reset limited-edition: 4 unit(s) held by orders" in captured.err
    assert "not reset gizmo: 1 unit(s) held by orders" in captured.err
    assert "reset widget: stock 1000" in captured.out
    assert await stock_of("limited-edition") == (6, 4)
    assert await stock_of("gizmo") == (999, 1)
    assert await stock_of("widget") == (1000, 0)


async def test_the_module_runs_from_the_command_line_with_the_settings_database(
    inventory_sessions, inventory_url, stock_of
) -> None:
    env = {**os.environ, "INVENTORY_DATABASE_URL": inventory_url}
    for _ in range(2):  # idempotent: the second run keeps everything
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "inventory.entrypoints.seed",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()

    assert "kept euro-widget" in out.decode()
    assert await stock_of("euro-widget") == (200, 0)
