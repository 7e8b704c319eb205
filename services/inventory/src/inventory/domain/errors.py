"""Business outcomes of the inventory service, as sentinel errors.

A reservation refusal carries the stable ``reason`` code of the failure reply
(``InventoryReservationFailed.reason``); handlers turn it into that reply, it never reaches the
consumer loop. Catalog errors are mapped to HTTP statuses by the HTTP entrypoint.
"""

from __future__ import annotations

from typing import ClassVar

from sagakit.contracts.inventory import ReservationFailure
from sagakit.errors import BusinessError


class ReservationRefused(BusinessError):
    """The order cannot be reserved; nothing was held."""

    code = "reservation_refused"
    reason: ClassVar[ReservationFailure]  # each subclass names its reply's reason code


class InvalidQuantity(ReservationRefused):
    """A line asks for zero, a negative or too large a quantity (or the order has no lines)."""

    code = "invalid_quantity"
    reason = "INVALID_QUANTITY"


class UnknownProduct(ReservationRefused):
    """A line names a product the catalog does not have."""

    code = "unknown_product"
    reason = "UNKNOWN_PRODUCT"


class CurrencyMismatch(ReservationRefused):
    """A product is priced in another currency than the order's."""

    code = "currency_mismatch"
    reason = "CURRENCY_MISMATCH"


class InsufficientStock(ReservationRefused):
    """A product has fewer units available than the order asks for."""

    code = "insufficient_stock"
    reason = "INSUFFICIENT_STOCK"


class OrderReleased(ReservationRefused):
    """The order was already released (a reserve re-sent after its compensation)."""

    code = "order_released"
    reason = "ORDER_RELEASED"


class CatalogError(BusinessError):
    """An operator's catalog request cannot be applied."""

    code = "catalog_error"


class ProductAlreadyExists(CatalogError):
    code = "product_already_exists"


class ProductNotFound(CatalogError):
    code = "product_not_found"
