"""HTTP clients of the public order API and the inventory catalog."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

TERMINAL_ORDER_STATUSES = {"CONFIRMED", "CANCELLED", "NEEDS_ATTENTION"}


def admin_token_from_env() -> str:
    return os.environ.get("ADMIN_TOKEN", "local-admin-token")


@dataclass
class Endpoints:
    api: str = "http://127.0.0.1:8000"
    inventory: str = "http://127.0.0.1:8001"
    # The catalog writes need the admin token; the same variable the services read.
    admin_token: str = field(default_factory=lambda: admin_token_from_env())

    @classmethod
    def from_env(cls) -> Endpoints:
        """The local services at the ports their own settings give them (``<SERVICE>_HTTP_PORT``),
        so the tools find a second system run on other ports without flags."""
        api = os.environ.get("ORCHESTRATOR_HTTP_PORT", "8000")
        inventory = os.environ.get("INVENTORY_HTTP_PORT", "8001")
        return cls(f"http://127.0.0.1:{api}", f"http://127.0.0.1:{inventory}")


class SagaShop:
    def __init__(self, endpoints: Endpoints, *, timeout: float = 10.0) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        self.api = httpx.AsyncClient(base_url=endpoints.api, timeout=timeout, limits=limits)
        self.inventory = httpx.AsyncClient(
            base_url=endpoints.inventory,
            timeout=timeout,
            headers={"Authorization": f"Bearer {endpoints.admin_token}"},
        )

    async def close(self) -> None:
        await self.api.aclose()
        await self.inventory.aclose()

    async def place_order(self, body: dict[str, Any], idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = await self.api.post("/orders", json=body, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"POST /orders answered {response.status_code}: {response.text}")
        return response.json()

    async def order(self, order_id: str) -> Any:
        response = await self.api.get(f"/orders/{order_id}")
        response.raise_for_status()
        return response.json()

    async def saga(self, saga_id: str) -> Any:
        # Saga detail is admin-only; the local default token unless ADMIN_TOKEN says otherwise.
        token = admin_token_from_env()
        response = await self.api.get(
            f"/sagas/{saga_id}", headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        return response.json()

    async def wait_terminal(self, order_id: str, *, timeout: float) -> Any:
        """Poll the order until its status is final (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while True:
            order = await self.order(order_id)
            if order["status"] in TERMINAL_ORDER_STATUSES or time.monotonic() > deadline:
                return order
            await asyncio.sleep(0.2)

    async def ensure_product(
        self, product_id: str, *, name: str, price: int, currency: str, stock: int
    ) -> None:
        """Create the product, or restock it so at least ``stock`` units are available."""
        response = await self.inventory.get(f"/products/{product_id}")
        if response.status_code == 404:
            body = {
                "product_id": product_id,
                "name": name,
                "price": price,
                "currency": currency,
                "stock": stock,
            }
            created = await self.inventory.post("/products", json=body)
            if created.status_code not in (201, 409):
                raise RuntimeError(f"cannot create {product_id}: {created.text}")
            return
        response.raise_for_status()
        missing = stock - int(response.json()["available"])
        if missing > 0:
            added = await self.inventory.post(
                f"/products/{product_id}/stock", json={"quantity": missing}
            )
            added.raise_for_status()

    async def ready(self) -> bool:
        try:
            api = await self.api.get("/readyz")
            inventory = await self.inventory.get("/readyz")
        except httpx.HTTPError:
            return False
        return api.status_code == inventory.status_code == 200
