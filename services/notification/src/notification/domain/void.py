"""What a voided confirmation records (pure: no I/O, no clock)."""

from __future__ import annotations


def void_detail(previous_status: str | None, previous_reason: str | None = None) -> str:
    """The failure reply's ``detail`` for a voided order (recorded once, replayed to every later
    SendOrderConfirmation). Says what the row was before, so the earlier outcome is not lost."""
    if previous_status is None:
        was = "before any send was asked for"
    elif previous_reason:
        was = f"when it was {previous_status} ({previous_reason})"
    else:
        was = f"when it was {previous_status}"
    return f"not sent: the saga voided this confirmation after its step timed out, {was}"
