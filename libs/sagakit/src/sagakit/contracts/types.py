"""Value types shared by the contracts: currency, order items, priced lines."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# ISO 4217 codes accepted for orders (a deliberate allow-list: an unknown code is a 4xx).
CURRENCIES = frozenset(
    [
        "AUD",
        "BRL",
        "CAD",
        "CHF",
        "CNY",
        "CZK",
        "DKK",
        "EUR",
        "GBP",
        "HKD",
        "HUF",
        "INR",
        "JPY",
        "KRW",
        "MXN",
        "NOK",
        "NZD",
        "PLN",
        "SEK",
        "SGD",
        "USD",
        "ZAR",
    ]
)

MAX_QUANTITY = 1_000
MAX_ITEMS = 100

# The one order every published example describes (``Message.example``).
EXAMPLE_ORDER_ID = "3f2b8c1e-5a7d-4e9f-8b6a-1c2d3e4f5a6b"
EXAMPLE_SAGA_ID = "9d8c7b6a-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
EXAMPLE_LINE = {"product_id": "widget", "quantity": 2, "unit_price": 1999, "line_total": 3998}


def _known_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"unknown currency {code!r}; use an ISO 4217 code such as USD or EUR")
    return code


Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_known_currency)]
ProductId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Cents = Annotated[int, Field(ge=0, strict=True)]


class _Value(BaseModel):
    # Tolerant like ``Message``: these travel inside messages, and evolve the same way.
    model_config = ConfigDict(frozen=True, extra="ignore")


class OrderItem(_Value):
    product_id: ProductId
    quantity: Annotated[int, Field(gt=0, le=MAX_QUANTITY, strict=True)]


class PricedLine(_Value):
    """One order line priced from the inventory catalog (never from the client)."""

    product_id: ProductId
    quantity: int
    unit_price: Cents
    line_total: Cents
