"""The simulated Stripe's outcomes follow Stripe's test payment methods."""

import pytest

from payment.adapters.simulated_stripe import REFUND_FAILING_METHODS, charge_decline

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "method", ["pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_refundFail"]
)
def test_these_methods_are_charged(method: str) -> None:
    assert charge_decline(method, 100) is None


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
        ("pm_card_unknown", "invalid_payment_method"),
        ("", "invalid_payment_method"),
        ("PM_CARD_VISA", "invalid_payment_method"),  # ids are case-sensitive, as at Stripe
    ],
)
def test_these_methods_are_declined_with_stripes_code(method: str, code: str) -> None:
    decline = charge_decline(method, 100)
    assert decline is not None
    assert decline.code == code
    assert decline.message


def test_a_zero_amount_is_declined() -> None:
    decline = charge_decline("pm_card_visa", 0)
    assert decline is not None
    assert decline.code == "amount_too_small"


def test_only_pm_card_refund_fail_refuses_refunds() -> None:
    assert frozenset({"pm_card_refundFail"}) == REFUND_FAILING_METHODS
