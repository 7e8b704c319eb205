"""How Stripe's answers map to outcomes: only ``succeeded`` is a charge, an undecided intent is
never reported, and a pending refund is one Stripe has accepted."""

import pytest
import stripe

from payment.adapters.stripe_gateway import intent_outcome, refund_outcome
from payment.domain.gateway import ChargeDeclined, ChargeSucceeded, RefundRefused, RefundSucceeded
from sagakit.errors import GatewayUnavailable

pytestmark = pytest.mark.unit


def intent(status: str, **fields: object) -> stripe.PaymentIntent:
    values = {"id": "pi_123", "object": "payment_intent", "status": status, **fields}
    return stripe.PaymentIntent.construct_from(values, "sk_test_123")


def refund(status: str, **fields: object) -> stripe.Refund:
    values = {"id": "re_123", "object": "refund", "status": status, **fields}
    return stripe.Refund.construct_from(values, "sk_test_123")


def test_a_succeeded_intent_is_a_charge() -> None:
    assert intent_outcome(intent("succeeded")) == ChargeSucceeded(payment_id="pi_123")


def test_a_processing_intent_is_not_reported_but_retried() -> None:
    with pytest.raises(GatewayUnavailable):
        intent_outcome(intent("processing"))


def test_an_intent_that_needs_the_customer_is_declined() -> None:
    outcome = intent_outcome(intent("requires_action"))
    assert isinstance(outcome, ChargeDeclined)
    assert outcome.decline_code == "authentication_required"


def test_an_unconfirmed_intent_is_declined_with_its_last_error() -> None:
    outcome = intent_outcome(
        intent(
            "requires_payment_method",
            last_payment_error={
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
        )
    )
    assert outcome == ChargeDeclined(
        decline_code="insufficient_funds",
        message="Your card has insufficient funds.",
        payment_id="pi_123",
    )


def test_an_unconfirmed_intent_without_details_is_still_declined() -> None:
    outcome = intent_outcome(intent("canceled", last_payment_error=None))
    assert isinstance(outcome, ChargeDeclined)
    assert outcome.decline_code == "payment_canceled"


@pytest.mark.parametrize("status", ["succeeded", "pending"])
def test_an_accepted_refund_is_a_refund(status: str) -> None:
    assert refund_outcome(refund(status)) == RefundSucceeded(refund_id="re_123")


def test_a_failed_refund_is_refused_with_stripes_reason() -> None:
    outcome = refund_outcome(refund("failed", failure_reason="expired_or_canceled_card"))
    assert isinstance(outcome, RefundRefused)
    assert outcome.reason == "expired_or_canceled_card"


def test_a_refund_needing_action_is_refused() -> None:
    outcome = refund_outcome(refund("requires_action"))
    assert isinstance(outcome, RefundRefused)
    assert outcome.reason == "refund_requires_action"
