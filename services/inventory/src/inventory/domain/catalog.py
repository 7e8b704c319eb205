"""Catalog values: a product as an operator (or the seed) adds it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewProduct:
    product_id: str
    name: str
    price: int  # integer cents
    currency: str
    stock: int
