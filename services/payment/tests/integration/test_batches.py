"""A batch of commands in one transaction: each order's commands in order, every order once."""

import pytest

from sagakit.contracts import PaymentDeclined, PaymentProcessed, PaymentRefunded

pytestmark = pytest.mark.integration


async def test_orders_of_one_batch_are_charged_refunded_and_declined_like_one_by_one(
    harness, saga_factory
) -> None:
    a, b, c = saga_factory(), saga_factory(), saga_factory()
    batch = [
        a.process(),
        b.process("pm_card_chargeDeclined"),
        a.process(),  # re-sent: the same answer, no second charge
        c.refund(),  # never charged: a no-op, and a later charge is refused
        a.refund(),
        c.process(),
        b.refund(),  # declined: nothing to refund
    ]
    await harness.deliver_batch(batch)

    replies = {r.causation_id: r.payload for r in await harness.replies()}
    got = [replies[e.message_id] for e in batch]
    assert isinstance(got[0], PaymentProcessed)
    assert isinstance(got[1], PaymentDeclined)
    assert got[2] == got[0]
    assert got[3] == PaymentRefunded(order_id=c.order_id, refund_id=None, amount=0)
    assert isinstance(got[4], PaymentRefunded)
    assert got[4].amount == got[0].amount
    assert isinstance(got[5], PaymentDeclined)
    assert got[5].reason == "order_compensated"
    assert got[6] == PaymentRefunded(order_id=b.order_id, refund_id=None, amount=0)
    charges = await harness.gateway_charges()
    assert sorted(ch.status for ch in charges) == ["declined", "succeeded"]  # a and b, once each
    assert len(await harness.gateway_refunds()) == 1  # a only
