"""The typed message contracts of the order saga, the registry that knows them all, and the
routes they travel (``ROUTES``: which topic carries each one, which replies answer a command).

Commands are imperative (``ReserveInventory``); replies and events are past tense
(``InventoryReserved``). Money is always integer minor units with an ISO 4217 currency code.
How they may change without breaking a reader: docs/contracts.md.
"""

from sagakit.contracts.base import REGISTRY, FailureReply, Reply, StepWasDone, SuccessReply
from sagakit.contracts.inventory import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReleaseInventory,
    RequestedItem,
    ReserveInventory,
)
from sagakit.contracts.notification import (
    NotificationFailed,
    OrderConfirmationAlreadySent,
    OrderConfirmationSent,
    OrderConfirmationVoided,
    SendOrderConfirmation,
    VoidOrderConfirmation,
)
from sagakit.contracts.orders import (
    OrderCancelled,
    OrderConfirmed,
    OrderNeedsAttention,
    PlaceOrder,
)
from sagakit.contracts.payment import (
    PaymentDeclined,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    ProcessPayment,
    RefundPayment,
)
from sagakit.contracts.routes import ROUTES, CommandRoute, Routes
from sagakit.contracts.types import Currency, OrderItem, PricedLine

__all__ = [
    "REGISTRY",
    "ROUTES",
    "CommandRoute",
    "Currency",
    "FailureReply",
    "InventoryReleased",
    "InventoryReservationFailed",
    "InventoryReserved",
    "NotificationFailed",
    "OrderCancelled",
    "OrderConfirmationAlreadySent",
    "OrderConfirmationSent",
    "OrderConfirmationVoided",
    "OrderConfirmed",
    "OrderItem",
    "OrderNeedsAttention",
    "PaymentDeclined",
    "PaymentProcessed",
    "PaymentRefundFailed",
    "PaymentRefunded",
    "PlaceOrder",
    "PricedLine",
    "ProcessPayment",
    "RefundPayment",
    "ReleaseInventory",
    "Reply",
    "RequestedItem",
    "ReserveInventory",
    "Routes",
    "SendOrderConfirmation",
    "StepWasDone",
    "SuccessReply",
    "VoidOrderConfirmation",
]
