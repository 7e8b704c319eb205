"""The detail recorded for a voided order says it was voided, and what the order was before."""

import pytest

from notification.domain.void import void_detail

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "reason", "says"),
    [
        (None, None, "before any send was asked for"),
        ("sending", None, "when it was sending"),
        ("expired", "EXPIRED", "when it was expired (EXPIRED)"),
        ("rejected", "SMTP_REJECTED", "when it was rejected (SMTP_REJECTED)"),
    ],
)
def test_the_detail_names_the_void_and_the_previous_state(status, reason, says) -> None:
    detail = void_detail(status, reason)
    assert detail.startswith("not sent: the saga voided this confirmation")
    assert detail.endswith(says)
