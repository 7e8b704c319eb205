"""Message handlers of the payment service: plain async functions (message, unit of work).

Idempotent on the order as well as on the message id: a re-sent command (new message id) finds
the order's recorded outcome and replies it again without calling the gateway. Gateway calls
carry keys derived from the saga, so a call repeated after a crash or a timeout (the handler's
transaction rolled back, the gateway had acted) gets the gateway's first answer, never a second
charge. ``GatewayUnavailable`` propagates: the consumer retries the same record later.
"""

from __future__ import annotations

import uuid
from typing import Any

from payment.adapters.orm import Payment, Refund, RefundAttempt
from payment.adapters.repository import PaymentRepository
from payment.domain.gateway import ChargeSucceeded, PaymentGateway, RefundSucceeded
from payment.domain.idempotency import charge_key, refund_key
from sagakit.contracts import (
    REGISTRY,
    PaymentDeclined,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    ProcessPayment,
    RefundPayment,
)
from sagakit.db.locks import lock_for_transaction
from sagakit.db.unit_of_work import UnitOfWork
from sagakit.errors import InvalidMessage
from sagakit.messaging.consumer import Handler
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message

__all__ = ["REGISTRY", "make_handlers"]

# A charge asked for after the order was compensated (a command re-sent late) is refused.
ORDER_COMPENSATED = "order_compensated"


def make_handlers(*, reply_topic: str, gateway: PaymentGateway) -> dict[str, Handler]:
    def reply(uow: UnitOfWork, envelope: Envelope[Any], payload: Message) -> None:
        uow.emit(reply_topic, envelope.reply(payload))

    async def process_payment(envelope: Envelope[ProcessPayment], uow: UnitOfWork) -> None:
        command = envelope.payload
        saga_id = _saga_id(envelope)
        repo = PaymentRepository(uow.session)
        # One command per order at a time (a rebalance or a re-sent compensation can deliver a
        # second copy while the first is mid-call): the second sees the first's outcome.
        await lock_for_transaction(uow.session, "payment-order", str(command.order_id))

        payment = await repo.payment(command.order_id)
        if payment is None:
            if await repo.refund(command.order_id) is not None:
                reply(
                    uow,
                    envelope,
                    PaymentDeclined(
                        order_id=command.order_id,
                        reason=ORDER_COMPENSATED,
                        detail="The order was already compensated; nothing was charged.",
                    ),
                )
                return
            key = charge_key(saga_id)
            result = await gateway.charge(
                amount=command.amount,
                currency=command.currency,
                payment_method=command.payment_method,
                idempotency_key=key,
                metadata={"order_id": str(command.order_id), "saga_id": str(saga_id)},
            )
            succeeded = isinstance(result, ChargeSucceeded)
            payment = Payment(
                order_id=command.order_id,
                saga_id=saga_id,
                amount=command.amount,
                currency=command.currency,
                payment_method=command.payment_method,
                status="succeeded" if succeeded else "declined",
                gateway_payment_id=result.payment_id,
                decline_code=None if isinstance(result, ChargeSucceeded) else result.decline_code,
                decline_message=None if isinstance(result, ChargeSucceeded) else result.message,
                idempotency_key=key,
            )
            await repo.add(payment)
        reply(uow, envelope, _charge_reply(payment))

    async def refund_payment(envelope: Envelope[RefundPayment], uow: UnitOfWork) -> None:
        order_id = envelope.payload.order_id
        saga_id = _saga_id(envelope)
        repo = PaymentRepository(uow.session)
        await lock_for_transaction(uow.session, "payment-order", str(order_id))

        refund = await repo.refund(order_id)
        if refund is None:
            payment = await repo.payment(order_id)
            if payment is None or payment.status != "succeeded":
                # Nothing was charged (declined, or never asked): the compensation is a no-op,
                # recorded so that a late charge for this order is refused.
                refund = Refund(order_id=order_id, saga_id=saga_id, amount=0, status="succeeded")
                await repo.add(refund)
            else:
                assert payment.gateway_payment_id is not None  # a check constraint guarantees it
                attempt = await repo.refused_refunds(order_id) + 1
                key = refund_key(saga_id, attempt)
                result = await gateway.refund(
                    payment_id=payment.gateway_payment_id,
                    amount=payment.amount,
                    idempotency_key=key,
                )
                if not isinstance(result, RefundSucceeded):
                    await repo.add(
                        RefundAttempt(
                            order_id=order_id,
                            attempt=attempt,
                            saga_id=saga_id,
                            idempotency_key=key,
                            reason=result.reason,
                            detail=result.message,
                        )
                    )
                    reply(
                        uow,
                        envelope,
                        PaymentRefundFailed(
                            order_id=order_id,
                            reason=result.reason,
                            detail=f"{result.message} (refund attempt {attempt})",
                        ),
                    )
                    return
                refund = Refund(
                    order_id=order_id,
                    saga_id=saga_id,
                    payment_id=payment.gateway_payment_id,
                    amount=payment.amount,
                    status="succeeded",
                    refund_id=result.refund_id,
                )
                await repo.add(refund)
        reply(
            uow,
            envelope,
            PaymentRefunded(order_id=order_id, refund_id=refund.refund_id, amount=refund.amount),
        )

    return {
        ProcessPayment.message_type: process_payment,
        RefundPayment.message_type: refund_payment,
    }


def _charge_reply(payment: Payment) -> PaymentProcessed | PaymentDeclined:
    if payment.status == "succeeded":
        assert payment.gateway_payment_id is not None  # a check constraint guarantees it
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
