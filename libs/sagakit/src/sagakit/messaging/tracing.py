"""W3C trace context (``traceparent``): a saga is one trace, each message a new span in it."""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    """Start a new trace (a new saga or an order from outside)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """A new span in the parent's trace; a missing or malformed parent starts a new trace."""
    match = _TRACEPARENT.match(parent or "")
    if match is None:
        return new_traceparent()
    trace_id, _span, flags = match.groups()
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def trace_id(traceparent: str) -> str | None:
    match = _TRACEPARENT.match(traceparent)
    return match.group(1) if match else None
