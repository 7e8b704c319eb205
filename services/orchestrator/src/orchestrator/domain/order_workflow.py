"""The default ``order`` workflow: reserve inventory -> process payment -> send notification.

[reserve_inventory]  --fail-->  nothing to undo: FAILED, order CANCELLED
      | ok                      compensation: ReleaseInventory
[process_payment]    --fail-->  ReleaseInventory -> COMPENSATED
      | ok                      compensation: RefundPayment
[send_notification]  --fail-->  RefundPayment -> ReleaseInventory -> COMPENSATED
      | ok
  COMPLETED, order CONFIRMED
"""

from __future__ import annotations

import uuid
from typing import Any

from orchestrator.domain.workflow import Compensation, Context, Step, WorkflowDefinition
from sagakit.contracts import (
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderNeedsAttention,
    PaymentProcessed,
    PlaceOrder,
    ProcessPayment,
    RefundPayment,
    ReleaseInventory,
    Reply,
    RequestedItem,
    ReserveInventory,
    SendOrderConfirmation,
    VoidOrderConfirmation,
)
from sagakit.messaging.registry import Message

ORDER_WORKFLOW = "order"


def order_context(order: PlaceOrder, saga_id: uuid.UUID) -> Context:
    """What the order workflow's steps read: the order as placed, and the saga's id."""
    return {
        "order_id": str(order.order_id),
        "saga_id": str(saga_id),
        "customer_id": order.customer_id,
        "email": order.email,
        "items": [item.model_dump() for item in order.items],
        "payment_method": order.payment_method,
        "currency": order.currency,
    }


def _order_id(ctx: Context) -> uuid.UUID:
    return uuid.UUID(ctx["order_id"])


def reserve_inventory(ctx: Context) -> Message:
    return ReserveInventory(
        order_id=_order_id(ctx),
        items=[RequestedItem(**item) for item in ctx["items"]],
        currency=ctx["currency"],
    )


def remember_prices(ctx: Context, reply: Reply) -> Context:
    assert isinstance(reply, InventoryReserved)
    lines: list[dict[str, Any]] = [line.model_dump() for line in reply.lines]
    return {**ctx, "lines": lines, "total": reply.total}


def process_payment(ctx: Context) -> Message:
    # The amount is the inventory's priced total, never a number from the client.
    return ProcessPayment(
        order_id=_order_id(ctx),
        customer_id=ctx["customer_id"],
        amount=ctx["total"],
        currency=ctx["currency"],
        payment_method=ctx["payment_method"],
    )


def remember_payment(ctx: Context, reply: Reply) -> Context:
    assert isinstance(reply, PaymentProcessed)
    return {**ctx, "payment_id": reply.payment_id}


def send_notification(ctx: Context) -> Message:
    return SendOrderConfirmation(
        order_id=_order_id(ctx),
        email=ctx["email"],
        lines=ctx["lines"],
        total=ctx["total"],
        currency=ctx["currency"],
    )


def _event_fields(ctx: Context) -> dict[str, Any]:
    return {
        "order_id": _order_id(ctx),
        "saga_id": uuid.UUID(ctx["saga_id"]),
        "customer_id": ctx["customer_id"],
    }


def order_confirmed(ctx: Context, _reason: str) -> Message:
    return OrderConfirmed(**_event_fields(ctx), total=ctx["total"], currency=ctx["currency"])


def order_cancelled(ctx: Context, reason: str) -> Message:
    return OrderCancelled(**_event_fields(ctx), reason=reason)


def order_needs_attention(ctx: Context, reason: str) -> Message:
    return OrderNeedsAttention(**_event_fields(ctx), reason=reason)


def order_workflow(*, step_timeout_s: float = 30.0) -> WorkflowDefinition:
    """Version 1 of the order workflow. A behaviour change ships as version 2 beside it."""
    return WorkflowDefinition(
        name=ORDER_WORKFLOW,
        version=1,
        steps=(
            Step(
                name="reserve_inventory",
                command=reserve_inventory,
                topic="inventory.commands",
                reply_topic="inventory.replies",
                timeout_s=step_timeout_s,
                on_success=remember_prices,
                compensation=Compensation(
                    command=lambda ctx: ReleaseInventory(order_id=_order_id(ctx)),
                    topic="inventory.commands",
                    reply_topic="inventory.replies",
                    timeout_s=step_timeout_s,
                ),
            ),
            Step(
                name="process_payment",
                command=process_payment,
                topic="payment.commands",
                reply_topic="payment.replies",
                timeout_s=step_timeout_s,
                on_success=remember_payment,
                compensation=Compensation(
                    command=lambda ctx: RefundPayment(order_id=_order_id(ctx)),
                    topic="payment.commands",
                    reply_topic="payment.replies",
                    timeout_s=step_timeout_s,
                ),
            ),
            Step(
                name="send_notification",
                command=send_notification,
                topic="notification.commands",
                reply_topic="notification.replies",
                timeout_s=step_timeout_s,
                # An email cannot be unsent. Run only when the step timed out: it stops a late
                # send, or answers that the email went out (then the order is confirmed).
                compensation=Compensation(
                    command=lambda ctx: VoidOrderConfirmation(order_id=_order_id(ctx)),
                    topic="notification.commands",
                    reply_topic="notification.replies",
                    timeout_s=step_timeout_s,
                ),
            ),
        ),
        on_completed=order_confirmed,
        on_cancelled=order_cancelled,
        on_needs_attention=order_needs_attention,
    )
