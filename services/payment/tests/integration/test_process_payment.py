"""ProcessPayment through the real handler, the simulated Stripe and PostgreSQL: each test payment
method's outcome, re-sent commands, and crashes between the charge and the commit."""

import pytest
from sqlalchemy import select

from payment.adapters.orm import Payment
from payment.service_layer.payments import ORDER_COMPENSATED
from sagakit.contracts import PaymentDeclined, PaymentProcessed
from sagakit.errors import GatewayUnavailable, InvalidMessage
from sagakit.messaging.envelope import Envelope

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "payment_method", ["pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_refundFail"]
)
async def test_a_succeeding_test_card_is_charged_once_and_replies_processed(
    harness, saga, payment_method
) -> None:
    command = saga.process(payment_method, amount=2599, currency="EUR")
    await harness.deliver(command)

    [reply] = await harness.replies()
    assert isinstance(reply.payload, PaymentProcessed)
    [charge] = await harness.gateway_charges()
    assert reply.payload.payment_id == charge.payment_id
    assert reply.payload.payment_id.startswith("pi_sim_")
    assert (reply.payload.amount, reply.payload.currency) == (2599, "EUR")
    assert type(reply.payload.amount) is int
    # the reply answers the command: same saga, order and step, caused by it
    assert (reply.saga_id, reply.order_id, reply.step) == (
        saga.saga_id,
        saga.order_id,
        "process_payment",
    )
    assert reply.causation_id == command.message_id
    # the gateway got a key derived from saga and step, and the order's ids as metadata
    assert charge.idempotency_key == f"{saga.saga_id}:process_payment"
    assert charge.metadata == {"order_id": str(saga.order_id), "saga_id": str(saga.saga_id)}
    assert (charge.amount, charge.currency) == (2599, "EUR")
    async with harness.sessions() as session:
        payment = await session.get_one(Payment, saga.order_id)
    assert (payment.status, payment.gateway_payment_id) == ("succeeded", charge.payment_id)
    assert (payment.amount, payment.idempotency_key) == (2599, charge.idempotency_key)


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
        ("pm_card_bogus", "invalid_payment_method"),
    ],
)
async def test_a_declining_test_card_replies_declined_with_the_decline_code(
    harness, saga, payment_method, decline_code
) -> None:
    await harness.deliver(saga.process(payment_method))

    [reply] = await harness.replies()
    assert isinstance(reply.payload, PaymentDeclined)
    assert reply.payload.reason == decline_code
    assert reply.payload.detail  # a human explanation
    async with harness.sessions() as session:
        payment = await session.get_one(Payment, saga.order_id)
    assert (payment.status, payment.decline_code) == ("declined", decline_code)


@pytest.mark.parametrize("payment_method", ["pm_card_visa", "pm_card_chargeDeclined"])
async def test_a_resent_command_with_a_new_message_id_charges_nothing_and_replies_the_same(
    harness, saga, payment_method
) -> None:
    first, again = saga.process(payment_method), saga.process(payment_method)
    assert first.message_id != again.message_id

    assert await harness.deliver(first)
    assert await harness.deliver(again)  # not an inbox duplicate: the order's record answers

    one, two = await harness.replies()
    assert one.payload == two.payload
    assert two.causation_id == again.message_id
    assert len(await harness.gateway_charges()) == 1


async def test_a_redelivered_message_is_dropped_by_the_inbox(harness, saga) -> None:
    command = saga.process()
    assert await harness.deliver(command)
    assert not await harness.deliver(command)
    assert len(await harness.replies()) == 1
    assert len(await harness.gateway_charges()) == 1


@pytest.mark.parametrize("resent", [False, True], ids=["redelivered", "resent-new-message-id"])
async def test_a_crash_after_the_charge_is_retried_without_a_second_charge(
    harness, saga, resent
) -> None:
    command = saga.process("pm_card_visa", amount=1234)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await harness.deliver_then_crash(command)

    # the charge is the gateway's, committed on its own; our side recorded nothing
    [charge] = await harness.gateway_charges()
    assert await harness.count(Payment) == 0
    assert await harness.replies() == []

    # Kafka redelivers the uncommitted record, or the orchestrator re-sends the command
    retry = saga.process("pm_card_visa", amount=1234) if resent else command
    assert await harness.deliver(retry)

    [reply] = await harness.replies()
    assert isinstance(reply.payload, PaymentProcessed)
    assert reply.payload.payment_id == charge.payment_id
    assert reply.payload.amount == 1234
    assert len(await harness.gateway_charges()) == 1


async def test_a_charge_whose_answer_was_lost_is_retried_with_the_same_key(
    harness, gateway, saga
) -> None:
    gateway.fail_next, gateway.fail_after_record = 1, True
    command = saga.process("pm_card_visa")

    with pytest.raises(GatewayUnavailable):
        await harness.deliver(command)
    [charge] = await harness.gateway_charges()  # charged, but we never heard
    assert await harness.count(Payment) == 0
    assert await harness.replies() == []  # a timeout is not reported, least of all as a decline

    await harness.deliver(command)

    [reply] = await harness.replies()
    assert isinstance(reply.payload, PaymentProcessed)
    assert reply.payload.payment_id == charge.payment_id
    assert len(await harness.gateway_charges()) == 1


async def test_a_charge_asked_for_after_the_order_was_compensated_is_refused(harness, saga) -> None:
    await harness.deliver(saga.refund())  # compensation first: nothing had been charged
    await harness.deliver(saga.process("pm_card_visa"))  # a late, re-sent charge

    refunded, declined = await harness.replies()
    assert refunded.payload.refund_id is None
    assert isinstance(declined.payload, PaymentDeclined)
    assert declined.payload.reason == ORDER_COMPENSATED
    assert await harness.gateway_charges() == []


async def test_a_command_without_a_saga_id_is_poison_and_charges_nothing(harness, saga) -> None:
    command = saga.process()
    orphan = Envelope(payload=command.payload, order_id=saga.order_id)
    with pytest.raises(InvalidMessage):
        await harness.deliver(orphan)
    assert await harness.gateway_charges() == []


async def test_amounts_are_stored_as_exact_integers(harness, saga) -> None:
    big = 9_007_199_254_740_993  # above 2**53: would be rounded by any float on the way
    await harness.deliver(saga.process("pm_card_visa", amount=big, currency="JPY"))

    [reply] = await harness.replies()
    assert reply.payload.amount == big
    async with harness.sessions() as session:
        stored = await session.scalar(select(Payment.amount))
    assert stored == big
