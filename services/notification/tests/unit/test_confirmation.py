"""The confirmation email: deterministic Message-ID, every line, the total, the order id."""

import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from notification.domain.confirmation import (
    OutgoingEmail,
    build_confirmation,
    message_id_for,
    short_id,
)
from notification.domain.errors import InvalidRecipient
from sagakit.contracts import PricedLine

pytestmark = pytest.mark.unit

ORDER = uuid.UUID("3f2a9c1e-7b4d-4e8a-9c0f-1a2b3c4d5e6f")
LINES = [
    PricedLine(product_id="sku-mug", quantity=2, unit_price=1999, line_total=3998),
    PricedLine(product_id="sku-poster-xl", quantity=10, unit_price=150, line_total=1500),
]


def build(**overrides: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "order_id": ORDER,
        "recipient": "ada@example.com",
        "sender": "orders@saga-shop.local",
        "lines": LINES,
        "total": 5498,
        "currency": "USD",
        "date": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    fields.update(overrides)
    return build_confirmation(**fields)  # type: ignore[arg-type]


def roundtrip(msg: OutgoingEmail) -> EmailMessage:
    """As the receiver sees it: serialised to bytes and parsed again."""
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body((subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_headers_name_the_order_and_the_message_id_is_the_same_every_time() -> None:
    msg = roundtrip(build())
    assert msg["Message-ID"] == f"<order-{ORDER}@saga-shop.local>" == message_id_for(ORDER)
    assert (
        roundtrip(build(date=datetime(2030, 1, 1, tzinfo=UTC)))["Message-ID"] == msg["Message-ID"]
    )
    assert msg["Subject"] == "Your order 3F2A9C1E is confirmed"
    assert short_id(ORDER) == "3F2A9C1E"
    assert msg["To"] == "ada@example.com"
    assert msg["From"] == "orders@saga-shop.local"
    assert msg["Date"] == "Thu, 02 Jan 2025 03:04:05 +0000"


def test_the_text_body_has_the_order_id_every_line_and_the_total() -> None:
    body = text_of(roundtrip(build()), "plain")
    assert str(ORDER) in body
    rows = {line.split()[0]: line.split() for line in body.splitlines() if line.startswith("sku-")}
    assert rows["sku-mug"] == ["sku-mug", "2", "USD", "19.99", "USD", "39.98"]
    assert rows["sku-poster-xl"] == ["sku-poster-xl", "10", "USD", "1.50", "USD", "15.00"]
    total = next(line for line in body.splitlines() if line.startswith("Total"))
    assert total.split() == ["Total", "USD", "54.98"]


def test_zero_decimal_currencies_show_no_decimals() -> None:
    lines = [PricedLine(product_id="sku-tea", quantity=3, unit_price=1200, line_total=3600)]
    body = text_of(roundtrip(build(lines=lines, total=3600, currency="JPY")), "plain")
    assert "JPY 1,200" in body
    assert "JPY 3,600" in body
    assert "36.00" not in body


def test_the_html_alternative_has_the_same_content_escaped() -> None:
    msg = roundtrip(build())
    assert msg.get_content_type() == "multipart/alternative"
    page = text_of(msg, "html")
    assert str(ORDER) in page
    for needle in ["sku-mug", "USD 19.99", "USD 39.98", "sku-poster-xl", "USD 15.00", "USD 54.98"]:
        assert needle in page


@pytest.mark.parametrize(
    "address",
    [
        "a,b@example.com",  # two addresses in a header
        "a;b@example.com",
        "a(comment)@example.com",  # the header would say a@example.com
        '"quoted@example.com',
        "<a>@example.com",
        "a@example..com",
    ],
)
def test_an_address_the_header_would_not_say_exactly_is_refused(address: str) -> None:
    with pytest.raises(InvalidRecipient) as caught:
        build(recipient=address)
    assert caught.value.reason == "INVALID_RECIPIENT"
    assert address in caught.value.detail


def test_plus_addresses_are_kept_as_given() -> None:
    assert roundtrip(build(recipient="x+orders@example.com"))["To"] == "x+orders@example.com"
