"""The sample catalog holds the products the demos and `make test-saga` rely on."""

import pytest

from inventory.entrypoints.seed import SAMPLE_CATALOG

pytestmark = pytest.mark.unit


def test_the_sample_catalog_has_the_products_the_demos_rely_on() -> None:
    assert {(p.product_id, p.price, p.currency, p.stock) for p in SAMPLE_CATALOG} >= {
        ("widget", 1999, "USD", 1000),
        ("gadget", 4999, "USD", 500),
        ("gizmo", 999, "USD", 1000),
        ("limited-edition", 15000, "USD", 10),
        ("sold-out", 2500, "USD", 0),
        ("euro-widget", 1899, "EUR", 200),
    }


def test_product_ids_are_unique() -> None:
    ids = [p.product_id for p in SAMPLE_CATALOG]
    assert len(ids) == len(set(ids))
