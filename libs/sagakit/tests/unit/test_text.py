"""The HTTP string types refuse control characters, and say so in their JSON schema."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from sagakit.contracts.text import Email, SendableEmail, identifier, line, text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        (identifier(20), "cust-42", True),
        (identifier(20), "Zoë Müller 東京", True),
        (identifier(20), "c\x00", False),
        (identifier(20), "c\x1b[2J", False),
        (identifier(20), "c\x85", False),
        (identifier(20), "   ", False),
        (Email, "me@example.com", True),
        (Email, "me\x00@example.com", False),
        (Email, "me@example.com\n", False),
        (Email, "me@localhost", False),
        (SendableEmail, "a.b+c@d-e.example", True),
        (SendableEmail, "me@example.com\n", False),
        # Found by stateful fuzzing: accepted by POST /orders, charged, then refused by the
        # notification (INVALID_RECIPIENT) and refunded.
        (SendableEmail, "zoë@bücher.example", False),
        (SendableEmail, "Á@,.ŀĶ", False),
        (SendableEmail, "a..b@example.com", False),
        (SendableEmail, "J;@3.A", False),
        (SendableEmail, "a,b@example.com", False),
        (line(50), "Widget — 🚀", True),
        (line(50), "Wid\nget", False),
        (line(50), "Wid\x00get", False),
        (text(50), "line one\nline two\tend", True),
        (text(50), "stop\x00", False),
        (text(50), "bell\x07", False),
    ],
)
def test_control_characters_are_refused_and_the_schema_agrees(
    kind: object, value: str, ok: bool
) -> None:
    adapter = TypeAdapter(kind)  # type: ignore[arg-type,var-annotated]
    pattern = adapter.json_schema()["pattern"]
    if ok:
        assert re.search(pattern, value) is not None  # what the OpenAPI promises is accepted
        assert adapter.validate_python(value) == value
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


@pytest.mark.parametrize("value", ["me@bücher.example", "~me@example.com"])
def test_an_email_the_notification_can_send_to_is_accepted(value: str) -> None:
    assert TypeAdapter(SendableEmail).validate_python(value) == value
