"""Idempotency keys derive from the saga and step only, so every retry derives the same one."""

import uuid

import pytest

from payment.domain.idempotency import charge_key, refund_key

pytestmark = pytest.mark.unit

SAGA = uuid.UUID("7d5f0a57-0f5e-4a55-9d53-3a0c8f6e2b11")


def test_the_charge_key_is_the_saga_and_the_step() -> None:
    assert charge_key(SAGA) == f"{SAGA}:process_payment"
    assert charge_key(SAGA) == charge_key(uuid.UUID(str(SAGA)))  # stable across processes


def test_each_refund_attempt_has_its_own_key() -> None:
    assert refund_key(SAGA, 1) == f"{SAGA}:refund_payment:1"
    assert refund_key(SAGA, 2) != refund_key(SAGA, 1)
    assert refund_key(SAGA, 1) != charge_key(SAGA)


def test_refund_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError):
        refund_key(SAGA, 0)
