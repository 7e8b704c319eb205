"""RefundPayment through the real handler, the simulated Stripe and PostgreSQL: refunds once,
nothing to undo, refused refunds with numbered attempts, and crashes after the refund."""

import pytest
from sqlalchemy import select

from payment.adapters.orm import Refund, RefundAttempt
from sagakit.contracts import PaymentRefunded, PaymentRefundFailed
from sagakit.errors import GatewayUnavailable

pytestmark = pytest.mark.integration


async def charged(harness, saga, payment_method: str = "pm_card_visa", amount: int = 4200) -> str:
    await harness.deliver(saga.process(payment_method, amount=amount))
    [charge] = await harness.gateway_charges()
    return str(charge.payment_id)


async def test_a_charged_order_is_refunded_in_full(harness, saga) -> None:
    payment_id = await charged(harness, saga, amount=4200)
    await harness.deliver(saga.refund())

    [refund] = await harness.gateway_refunds()
    assert (refund.payment_id, refund.amount, refund.status) == (payment_id, 4200, "succeeded")
    assert refund.idempotency_key == f"{saga.saga_id}:refund_payment:1"
    reply = (await harness.replies())[-1]
    assert reply.payload == PaymentRefunded(
        order_id=saga.order_id, refund_id=refund.refund_id, amount=4200
    )
    async with harness.sessions() as session:
        stored = await session.get_one(Refund, saga.order_id)
    assert (stored.refund_id, stored.payment_id, stored.amount) == (
        refund.refund_id,
        payment_id,
        4200,
    )


async def test_a_resent_refund_refunds_once_and_replies_the_same(harness, saga) -> None:
    await charged(harness, saga)
    await harness.deliver(saga.refund())
    await harness.deliver(saga.refund())  # the retry worker's re-send: a new message id

    _, first, second = await harness.replies()
    assert isinstance(first.payload, PaymentRefunded)
    assert first.payload == second.payload
    assert first.payload.refund_id is not None
    assert len(await harness.gateway_refunds()) == 1


async def test_refunding_an_order_never_charged_succeeds_and_calls_no_gateway(
    harness, saga
) -> None:
    await harness.deliver(saga.refund())
    await harness.deliver(saga.refund())

    replies = await harness.replies()
    assert [r.payload for r in replies] == [
        PaymentRefunded(order_id=saga.order_id, refund_id=None, amount=0)
    ] * 2
    assert await harness.gateway_refunds() == []


async def test_refunding_a_declined_charge_succeeds_and_calls_no_gateway(harness, saga) -> None:
    await harness.deliver(saga.process("pm_card_chargeDeclined"))
    await harness.deliver(saga.refund())

    reply = (await harness.replies())[-1]
    assert reply.payload == PaymentRefunded(order_id=saga.order_id, refund_id=None, amount=0)
    assert await harness.gateway_refunds() == []


async def test_a_refused_refund_fails_each_time_with_a_new_attempt_number(harness, saga) -> None:
    await charged(harness, saga, "pm_card_refundFail")
    for _ in range(3):
        await harness.deliver(saga.refund())

    replies = [r.payload for r in (await harness.replies())[1:]]
    assert all(isinstance(p, PaymentRefundFailed) for p in replies)
    assert [p.reason for p in replies] == ["refund_failed"] * 3
    assert [p.detail.endswith(f"(refund attempt {n})") for n, p in enumerate(replies, 1)] == [
        True
    ] * 3
    # each refused attempt asked under its own key: a refusal is definitive
    assert [r.idempotency_key for r in await harness.gateway_refunds()] == [
        f"{saga.saga_id}:refund_payment:{n}" for n in (1, 2, 3)
    ]
    async with harness.sessions() as session:
        attempts = (
            await session.execute(
                select(RefundAttempt.attempt, RefundAttempt.reason).order_by(RefundAttempt.attempt)
            )
        ).all()
    assert [tuple(a) for a in attempts] == [(n, "refund_failed") for n in (1, 2, 3)]
    assert await harness.count(Refund) == 0  # nothing recorded as refunded


async def test_a_refund_whose_answer_was_lost_is_retried_with_the_same_key(
    harness, gateway, saga
) -> None:
    await charged(harness, saga)
    gateway.fail_next, gateway.fail_after_record = 1, True
    command = saga.refund()

    with pytest.raises(GatewayUnavailable):
        await harness.deliver(command)
    [refund] = await harness.gateway_refunds()
    assert await harness.count(RefundAttempt) == 0  # a timeout is not a refusal

    await harness.deliver(command)

    reply = (await harness.replies())[-1]
    assert isinstance(reply.payload, PaymentRefunded)
    assert reply.payload.refund_id == refund.refund_id
    assert len(await harness.gateway_refunds()) == 1


async def test_a_crash_after_the_refund_is_redelivered_without_a_second_refund(
    harness, saga
) -> None:
    await charged(harness, saga)
    command = saga.refund()
    with pytest.raises(RuntimeError, match="simulated crash"):
        await harness.deliver_then_crash(command)
    [refund] = await harness.gateway_refunds()
    assert await harness.count(Refund) == 0

    await harness.deliver(command)

    reply = (await harness.replies())[-1]
    assert reply.payload.refund_id == refund.refund_id
    assert len(await harness.gateway_refunds()) == 1


async def test_copies_of_one_order_s_commands_handled_at_once_do_not_collide(harness, saga) -> None:
    """Found by the chaos run: during a rebalance two replicas handled refunds of one order at
    the same moment, computed the same attempt number and collided on its unique key until the
    record was dead-lettered. Commands of one order are now serialised by an advisory lock."""
    import asyncio

    await charged(harness, saga, "pm_card_refundFail")
    results = await asyncio.gather(*(harness.deliver(saga.refund()) for _ in range(4)))
    assert results == [True] * 4  # none raised
    replies = [r.payload for r in (await harness.replies())[1:]]
    assert [type(p) for p in replies] == [PaymentRefundFailed] * 4
    keys = sorted(r.idempotency_key for r in await harness.gateway_refunds())
    assert keys == sorted(f"{saga.saga_id}:refund_payment:{n}" for n in (1, 2, 3, 4))


async def test_copies_of_one_charge_handled_at_once_charge_once(harness, saga) -> None:
    import asyncio

    await asyncio.gather(
        *(harness.deliver(saga.process("pm_card_visa", amount=1500)) for _ in range(4))
    )
    assert len(await harness.gateway_charges()) == 1
    replies = [r.payload for r in await harness.replies()]
    assert len({r.payment_id for r in replies}) == 1
