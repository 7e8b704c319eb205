"""The simulated Stripe as an external processor: idempotent on its key, its records committed on
its own (whatever the caller's transaction does), and Stripe-like refusals."""

import pytest
from sqlalchemy import text

from payment.domain.gateway import (
    ChargeDeclined,
    ChargeSucceeded,
    IdempotencyKeyReused,
    RefundRefused,
    RefundSucceeded,
)
from sagakit.errors import GatewayUnavailable

pytestmark = pytest.mark.integration


def charge_args(key: str = "saga:process_payment", **changes):
    return {
        "amount": 1500,
        "currency": "USD",
        "payment_method": "pm_card_visa",
        "idempotency_key": key,
        "metadata": {"order_id": "o-1"},
    } | changes


async def rows(sessions, table: str) -> int:
    async with sessions() as session:
        return int(await session.scalar(text(f"SELECT count(*) FROM simulated_stripe.{table}")))


async def test_the_same_key_answers_the_same_charge_and_charges_once(
    simulated_stripe, payment_sessions
) -> None:
    first = await simulated_stripe.charge(**charge_args())
    again = await simulated_stripe.charge(**charge_args())
    assert isinstance(first, ChargeSucceeded)
    assert again == first
    assert await rows(payment_sessions, "charges") == 1


async def test_a_declined_charge_is_answered_the_same_again(simulated_stripe) -> None:
    args = charge_args(payment_method="pm_card_chargeDeclinedInsufficientFunds")
    first = await simulated_stripe.charge(**args)
    assert isinstance(first, ChargeDeclined)
    assert first.decline_code == "insufficient_funds"
    assert await simulated_stripe.charge(**args) == first


async def test_a_key_reused_for_a_different_charge_is_refused(simulated_stripe) -> None:
    await simulated_stripe.charge(**charge_args())
    with pytest.raises(IdempotencyKeyReused):
        await simulated_stripe.charge(**charge_args(amount=1501))


async def test_the_charge_survives_the_callers_rollback(simulated_stripe, payment_sessions) -> None:
    async with payment_sessions() as caller:
        await caller.begin()
        result = await simulated_stripe.charge(**charge_args())
        await caller.rollback()
    assert isinstance(result, ChargeSucceeded)
    async with payment_sessions() as session:
        stored = await session.scalar(text("SELECT payment_id FROM simulated_stripe.charges"))
    assert stored == result.payment_id


async def test_a_timeout_before_the_charge_records_nothing(gateway, payment_sessions) -> None:
    gateway.fail_next = 1
    with pytest.raises(GatewayUnavailable):
        await gateway.charge(**charge_args())
    assert await rows(payment_sessions, "charges") == 0
    assert isinstance(await gateway.charge(**charge_args()), ChargeSucceeded)


async def test_refunds_are_idempotent_and_a_second_key_gets_the_earlier_refund(
    simulated_stripe, payment_sessions
) -> None:
    charge = await simulated_stripe.charge(**charge_args())
    first = await simulated_stripe.refund(
        payment_id=charge.payment_id, amount=1500, idempotency_key="r:1"
    )
    again = await simulated_stripe.refund(
        payment_id=charge.payment_id, amount=1500, idempotency_key="r:1"
    )
    other_key = await simulated_stripe.refund(
        payment_id=charge.payment_id, amount=1500, idempotency_key="r:2"
    )
    assert isinstance(first, RefundSucceeded)
    assert again == first
    assert other_key == first  # already refunded: Stripe's charge_already_refunded, read as done
    assert await rows(payment_sessions, "refunds") == 1


@pytest.mark.parametrize(
    ("payment_method", "amount", "reason"),
    [
        ("pm_card_refundFail", 1500, "refund_failed"),
        ("pm_card_chargeDeclined", 1500, "payment_intent_unexpected_state"),
        ("pm_card_visa", 1501, "amount_too_large"),
    ],
)
async def test_refunds_the_gateway_refuses(
    simulated_stripe, payment_method, amount, reason
) -> None:
    charge = await simulated_stripe.charge(**charge_args(payment_method=payment_method))
    result = await simulated_stripe.refund(
        payment_id=charge.payment_id, amount=amount, idempotency_key="r:1"
    )
    assert isinstance(result, RefundRefused)
    assert result.reason == reason
    assert result.message


async def test_a_refund_of_an_unknown_payment_is_refused(simulated_stripe) -> None:
    result = await simulated_stripe.refund(payment_id="pi_nope", amount=1, idempotency_key="r:1")
    assert result == RefundRefused("resource_missing", "No such payment: 'pi_nope'.")
