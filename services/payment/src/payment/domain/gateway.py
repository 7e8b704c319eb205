"""The payment gateway port: what the handlers need from a card processor, and its outcomes.

A decline or a refused refund is a definitive answer from the gateway and comes back as a result.
Anything that leaves the outcome unknown (timeout, connection error, 429, 5xx) raises
``sagakit.errors.GatewayUnavailable`` instead: the call is repeated later with the same
idempotency key, so it is never mistaken for a decline and never charges twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sagakit.errors import SagaError


@dataclass(frozen=True, slots=True)
class ChargeSucceeded:
    payment_id: str


@dataclass(frozen=True, slots=True)
class ChargeDeclined:
    decline_code: str  # Stripe's code: generic_decline, insufficient_funds, expired_card...
    message: str
    payment_id: str | None = None  # the gateway's record of the attempt, when it made one


ChargeResult = ChargeSucceeded | ChargeDeclined


@dataclass(frozen=True, slots=True)
class RefundSucceeded:
    refund_id: str


@dataclass(frozen=True, slots=True)
class RefundRefused:
    reason: str
    message: str


RefundResult = RefundSucceeded | RefundRefused


class IdempotencyKeyReused(SagaError):
    """An idempotency key was sent again with different parameters (a bug, never retried)."""

    code = "idempotency_key_reused"


class PaymentGateway(Protocol):
    async def charge(
        self,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> ChargeResult:
        """Charge ``amount`` minor units at once (authorise and capture)."""
        ...

    async def refund(self, *, payment_id: str, amount: int, idempotency_key: str) -> RefundResult:
        """Refund ``amount`` minor units of a successful charge."""
        ...
