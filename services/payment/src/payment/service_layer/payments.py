"""The payment rules: charge an order once, refund it once, whatever arrives how often.

Idempotent on the order as well as on the message id: a re-sent command (new message id) finds
the order's recorded outcome and replies it again without calling the gateway. Gateway calls
carry keys derived from the saga, so a call repeated after a crash or a timeout (the transaction
rolled back, the gateway had acted) gets the gateway's first answer, never a second charge.
``GatewayUnavailable`` propagates: the consumer retries the records later.

A batch of commands is handled together: one lock statement and one read for all its orders,
the gateway calls of different orders at the same time (each order's own commands in order),
and one insert per kind of record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from payment.adapters import payment_store
from payment.adapters.payment_store import OrderPayments
from payment.domain.gateway import ChargeSucceeded, PaymentGateway, RefundSucceeded
from payment.domain.idempotency import charge_key, refund_key
from payment.domain.records import (
    PaymentRecord,
    PaymentStatus,
    RefundAttempt,
    RefundRecord,
    RefundStatus,
)
from sagakit.contracts import (
    PaymentDeclined,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    ProcessPayment,
    RefundPayment,
)
from sagakit.errors import InvalidMessage
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.ops.logging import log_ids
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.telemetry import client_span

# A charge asked for after the order was compensated (a command re-sent late) is refused.
ORDER_COMPENSATED = "order_compensated"


class Payments:
    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway
        # "stripe" or "simulatedstripe" (the test double), on the gateway call's span
        self._gateway_name = type(gateway).__name__.removesuffix("Gateway").lower()

    async def handle(self, uow: UnitOfWork, envelopes: Sequence[Envelope[Any]]) -> list[Message]:
        """The reply to each command, in order (the caller emits them and commits)."""
        saga_ids = [_saga_id(e) for e in envelopes]  # poison before any gateway call
        order_ids = [e.payload.order_id for e in envelopes]
        await payment_store.lock_orders(uow.conn, order_ids)
        books = await payment_store.load(uow.conn, order_ids)
        by_order: dict[uuid.UUID, list[int]] = {}
        for i, order_id in enumerate(order_ids):
            by_order.setdefault(order_id, []).append(i)
        replies: list[Message | None] = [None] * len(envelopes)

        async def one_order(positions: list[int]) -> None:
            for i in positions:
                envelope = envelopes[i]
                book = books[order_ids[i]]
                if isinstance(envelope.payload, ProcessPayment):
                    replies[i] = await self._charge(
                        book, envelope.payload, saga_ids[i], envelope.traceparent
                    )
                else:
                    assert isinstance(envelope.payload, RefundPayment)
                    replies[i] = await self._refund(
                        book, order_ids[i], saga_ids[i], envelope.traceparent
                    )

        # Every call finishes (none is cancelled half-way); an outage then fails the batch and
        # the consumer retries it: calls that did go through answer the same under their keys.
        outcomes = await asyncio.gather(
            *(one_order(positions) for positions in by_order.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        payment_store.insert(uow, [r for book in books.values() for r in book.new])
        return [reply for reply in replies if reply is not None]

    async def _charge(
        self, book: OrderPayments, command: ProcessPayment, saga_id: uuid.UUID, trace: str
    ) -> Message:
        if book.payment is None:
            if book.refund is not None:
                return PaymentDeclined(
                    order_id=command.order_id,
                    reason=ORDER_COMPENSATED,
                    detail="The order was already compensated; nothing was charged.",
                )
            key = charge_key(saga_id)
            with (
                client_span(
                    "payment gateway charge",
                    trace,
                    {"payment.gateway": self._gateway_name, **_ids(saga_id, command.order_id)},
                ),
                log_ids(saga_id, command.order_id, trace),
            ):
                result = await self._gateway.charge(
                    amount=command.amount,
                    currency=command.currency,
                    payment_method=command.payment_method,
                    idempotency_key=key,
                    metadata={"order_id": str(command.order_id), "saga_id": str(saga_id)},
                )
            succeeded = isinstance(result, ChargeSucceeded)
            book.payment = PaymentRecord(
                order_id=command.order_id,
                saga_id=saga_id,
                amount=command.amount,
                currency=command.currency,
                payment_method=command.payment_method,
                status=PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.DECLINED,
                gateway_payment_id=result.payment_id,
                decline_code=None if isinstance(result, ChargeSucceeded) else result.decline_code,
                decline_message=None if isinstance(result, ChargeSucceeded) else result.message,
                idempotency_key=key,
            )
            book.new.append(book.payment)
        return _charge_reply(book.payment)

    async def _refund(
        self, book: OrderPayments, order_id: uuid.UUID, saga_id: uuid.UUID, trace: str
    ) -> Message:
        if book.refund is None:
            payment = book.payment
            if payment is None or payment.status != PaymentStatus.SUCCEEDED:
                # Nothing was charged (declined, or never asked): the compensation is a no-op,
                # recorded so that a late charge for this order is refused.
                book.refund = RefundRecord(
                    order_id, saga_id, None, 0, RefundStatus.SUCCEEDED, refund_id=None
                )
                book.new.append(book.refund)
            else:
                assert payment.gateway_payment_id is not None  # a CHECK constraint says so
                attempt = book.refused_refunds + 1
                key = refund_key(saga_id, attempt)
                with (
                    client_span(
                        "payment gateway refund",
                        trace,
                        {"payment.gateway": self._gateway_name, **_ids(saga_id, order_id)},
                    ),
                    log_ids(saga_id, order_id, trace),
                ):
                    result = await self._gateway.refund(
                        payment_id=payment.gateway_payment_id,
                        amount=payment.amount,
                        idempotency_key=key,
                    )
                if not isinstance(result, RefundSucceeded):
                    book.refused_refunds = attempt
                    book.new.append(
                        RefundAttempt(
                            order_id, attempt, saga_id, key, result.reason, result.message
                        )
                    )
                    return PaymentRefundFailed(
                        order_id=order_id,
                        reason=result.reason,
                        detail=f"{result.message} (refund attempt {attempt})",
                    )
                book.refund = RefundRecord(
                    order_id,
                    saga_id,
                    payment.gateway_payment_id,
                    payment.amount,
                    RefundStatus.SUCCEEDED,
                    result.refund_id,
                )
                book.new.append(book.refund)
        return PaymentRefunded(
            order_id=order_id, refund_id=book.refund.refund_id, amount=book.refund.amount
        )


def _charge_reply(payment: PaymentRecord) -> PaymentProcessed | PaymentDeclined:
    if payment.status == PaymentStatus.SUCCEEDED:
        assert payment.gateway_payment_id is not None  # a CHECK constraint says so
        return PaymentProcessed(
            order_id=payment.order_id,
            payment_id=payment.gateway_payment_id,
            amount=payment.amount,
            currency=payment.currency,
        )
    return PaymentDeclined(
        order_id=payment.order_id,
        reason=payment.decline_code or "card_declined",
        detail=payment.decline_message or "",
    )


def _saga_id(envelope: Envelope[Any]) -> uuid.UUID:
    # Idempotency keys derive from the saga: a command without one cannot be charged safely.
    if envelope.saga_id is None:
        raise InvalidMessage(f"{envelope.message_type} {envelope.message_id} has no saga id")
    return envelope.saga_id


def _ids(saga_id: uuid.UUID, order_id: uuid.UUID) -> dict[str, str]:
    return {"saga.id": str(saga_id), "order.id": str(order_id)}
