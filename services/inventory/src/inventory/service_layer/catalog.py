"""Catalog operations for operators: add products, restock, read stock, seed a sample catalog.

Each function is one transaction and commits it. Row locks follow the same order as reserve
(product id), so they never deadlock with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from inventory.adapters.orm import Product
from inventory.adapters.repository import InventoryRepository
from inventory.domain.catalog import NewProduct
from inventory.domain.errors import ProductAlreadyExists, ProductNotFound


async def add_product(repo: InventoryRepository, new: NewProduct) -> Product:
    product = await repo.add_product(new)
    if product is None:
        raise ProductAlreadyExists(f"product {new.product_id!r} already exists")
    await repo.session.commit()
    return product


async def restock(repo: InventoryRepository, product_id: str, quantity: int) -> Product:
    """Add units: they become available, and count in ``initial_stock`` (stock ever added)."""
    product = await repo.get_product(product_id, lock=True)
    if product is None:
        raise ProductNotFound(f"product {product_id!r} not found")
    product.available += quantity
    product.initial_stock += quantity
    await repo.session.commit()
    return product


async def get_product(repo: InventoryRepository, product_id: str) -> Product:
    product = await repo.get_product(product_id)
    if product is None:
        raise ProductNotFound(f"product {product_id!r} not found")
    return product


async def list_products(repo: InventoryRepository) -> Sequence[Product]:
    return await repo.list_products()


async def seed(repo: InventoryRepository, catalog: Sequence[NewProduct]) -> list[str]:
    """Add the catalog's missing products; existing ones are left alone. Returns what it did."""
    report = []
    for new in sorted(catalog, key=lambda p: p.product_id):
        added = await repo.add_product(new)
        if added is not None:
            report.append(f"added {new.product_id}: stock {new.stock}")
        else:
            report.append(f"kept {new.product_id}: it exists")
    await repo.session.commit()
    return report


async def reset(
    repo: InventoryRepository, catalog: Sequence[NewProduct]
) -> tuple[list[str], list[str]]:
    """Put every catalog product back to its seed stock, adding missing ones.

    A product with units still held by an order is refused (left as it is): resetting it would
    break the books (``available + reserved = initial_stock``) and the order's later release.
    Returns (what was done, what was refused).
    """
    done: list[str] = []
    refused: list[str] = []
    wanted = {p.product_id: p for p in catalog}
    locked = await repo.lock_products(wanted)  # holds off reserves until this commits
    for product_id in sorted(wanted):
        new = wanted[product_id]
        product = locked.get(product_id)
        if product is None:
            await repo.add_product(new)
            done.append(f"added {product_id}: stock {new.stock}")
            continue
        held = await repo.held_quantity(product_id)
        if held or product.reserved:
            refused.append(
                f"not reset {product_id}: {max(held, product.reserved)} unit(s) held by orders"
            )
            continue
        product.available = new.stock
        product.initial_stock = new.stock
        done.append(f"reset {product_id}: stock {new.stock}")
    await repo.session.commit()
    return done, refused
