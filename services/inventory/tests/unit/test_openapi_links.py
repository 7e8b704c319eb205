"""Inventory's OpenAPI carries its links (a wrong one would make the document fail)."""

from __future__ import annotations

import pytest

from inventory.entrypoints.http import CATALOG_LINKS, catalog_router
from sagakit.http.links import declare_links
from sagakit.ops.auth import FailedLogins
from sagakit.ops.http import build_ops_app

pytestmark = pytest.mark.unit


def test_a_product_links_to_its_restock_and_back() -> None:
    app = build_ops_app("inventory", {})
    router = catalog_router(None, admin_token="t", failed_logins=FailedLogins(5, 60))  # type: ignore[arg-type]
    app.include_router(router)
    declare_links(app, CATALOG_LINKS)
    paths = app.openapi()["paths"]

    added = paths["/products"]["post"]["responses"]["201"]["links"]
    assert set(added) == {"GetProduct", "Restock"}
    assert added["Restock"]["parameters"] == {"product_id": "$response.body#/product_id"}
    assert set(paths["/products/{product_id}/stock"]["post"]["responses"]["200"]["links"]) == {
        "GetProduct"
    }
    assert set(paths["/products/{product_id}"]["get"]["responses"]["200"]["links"]) == {"Restock"}
