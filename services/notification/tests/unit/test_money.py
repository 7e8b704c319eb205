"""Money in the email: integer minor units shown in major units, per the currency's exponent."""

from decimal import Decimal

import pytest

from notification.domain.money import format_money, minor_units
from sagakit.contracts.types import CURRENCIES

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "USD", "USD 19.99"),
        (5, "EUR", "EUR 0.05"),
        (0, "GBP", "GBP 0.00"),
        (100, "USD", "USD 1.00"),
        (123_456_789, "USD", "USD 1,234,567.89"),
        # Zero-decimal currencies: 1500 minor units are 1,500 yen, not 15.00.
        (1500, "JPY", "JPY 1,500"),
        (7, "JPY", "JPY 7"),
        (0, "KRW", "KRW 0"),
        (1_250_000, "KRW", "KRW 1,250,000"),
        # Three-decimal currencies, in case one is ever allowed.
        (1234, "KWD", "KWD 1.234"),
        (1999, "usd", "USD 19.99"),
    ],
)
def test_amounts_are_formatted_from_minor_units(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


def test_of_the_allowed_currencies_only_jpy_and_krw_have_no_decimals() -> None:
    assert {c for c in CURRENCIES if minor_units(c) == 0} == {"JPY", "KRW"}
    assert {minor_units(c) for c in CURRENCIES - {"JPY", "KRW"}} == {2}


@pytest.mark.parametrize("currency", sorted(CURRENCIES))
@pytest.mark.parametrize("amount", [0, 1, 10, 99, 1998, 1999, 10_000_001])
def test_the_shown_amount_is_exactly_the_amount(amount: int, currency: str) -> None:
    # No float anywhere: reading the text back gives the same integer (1999 never shows 19.98).
    code, number = format_money(amount, currency).split(" ")
    assert code == currency
    assert Decimal(number.replace(",", "")) * 10 ** minor_units(currency) == amount
