"""Idempotency keys for gateway calls, derived from the saga and its step (never random).

A retry of the same command (redelivery, or a re-sent command with a new message id) derives the
same key, so the gateway answers with the outcome it already has instead of acting twice.
"""

from __future__ import annotations

import uuid


def charge_key(saga_id: uuid.UUID) -> str:
    return f"{saga_id}:process_payment"


def refund_key(saga_id: uuid.UUID, attempt: int) -> str:
    """A refused refund is definitive, so the next attempt may ask again under a new key; an
    attempt whose answer was lost (a timeout) is retried with its own key."""
    if attempt < 1:
        raise ValueError("refund attempts are numbered from 1")
    return f"{saga_id}:refund_payment:{attempt}"
