"""A simulated Stripe: a test double of the card processor, for demos, tests and fault runs.

Chosen only explicitly (``PAYMENT_GATEWAY=simulated``; production uses Stripe). Outcomes follow
Stripe's test payment methods (``pm_card_visa`` succeeds, ``pm_card_chargeDeclined`` is
declined, ``pm_card_refundFail`` charges but refuses every refund...).

It plays an external processor, so it keeps its "provider-side" records in a store of its own:
the ``simulated_stripe`` schema of the database it is given, created by this module on first use
(``ensure_store``), never by the payment service's migrations. It commits them in its own
transactions, never in the caller's unit of work: a charge made before the caller's transaction
rolled back stays made, exactly like a real Stripe charge, and a repeated call with the same
idempotency key answers from the record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import asyncpg
import orjson

from payment.domain.gateway import (
    ChargeDeclined,
    ChargeResult,
    ChargeSucceeded,
    IdempotencyKeyReused,
    RefundRefused,
    RefundResult,
    RefundSucceeded,
)
from sagakit.db.errors import is_retriable_db_error
from sagakit.db.group_commit import GroupCommit
from sagakit.db.pool import Database
from sagakit.errors import GatewayUnavailable

__all__ = [
    "DECLINING_METHODS",
    "REFUND_FAILING_METHODS",
    "SCHEMA",
    "SUCCEEDING_METHODS",
    "ChargeStatus",
    "RefundStatus",
    "SimulatedStripe",
    "charge_decline",
]

# The simulator's own store: a schema of its own, next to (never inside) the service's tables.
SCHEMA = "simulated_stripe"


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


class RefundStatus(StrEnum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"  # kept, like Stripe's idempotency cache keeps a failed request's answer


@dataclass(frozen=True, slots=True)
class _Decline:
    code: str
    message: str


# https://docs.stripe.com/testing#declined-payments
SUCCEEDING_METHODS = frozenset(
    {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_refundFail"}
)
DECLINING_METHODS = {
    "pm_card_chargeDeclined": _Decline("generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": _Decline(
        "insufficient_funds", "Your card has insufficient funds."
    ),
    "pm_card_chargeDeclinedExpiredCard": _Decline("expired_card", "Your card has expired."),
}
# The charge succeeds, but every refund of it fails (the compensation-failure path).
REFUND_FAILING_METHODS = frozenset({"pm_card_refundFail"})

# Created on first use; concurrent processes serialise on the advisory lock (CREATE ... IF NOT
# EXISTS alone races on the catalog).
_STORE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.charges (
    idempotency_key varchar(255) PRIMARY KEY,
    payment_id varchar(255) NOT NULL UNIQUE,
    amount bigint NOT NULL CHECK (amount >= 0),
    currency varchar(3) NOT NULL,
    payment_method varchar(128) NOT NULL,
    status varchar(16) NOT NULL CHECK (status IN ('succeeded', 'declined')),
    decline_code varchar(64),
    message text,
    metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.refunds (
    idempotency_key varchar(255) PRIMARY KEY,
    refund_id varchar(255) UNIQUE,
    payment_id varchar(255) NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    status varchar(16) NOT NULL CHECK (status IN ('succeeded', 'refused')),
    reason varchar(64),
    message text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS refunds_payment_id ON {SCHEMA}.refunds (payment_id);
"""
_STORE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('simulated_stripe.store'))"


def charge_decline(payment_method: str, amount: int) -> _Decline | None:
    """The decline a charge meets, or None when it succeeds."""
    if amount <= 0:
        return _Decline("amount_too_small", "The amount must be at least one minor unit.")
    if payment_method in SUCCEEDING_METHODS:
        return None
    return DECLINING_METHODS.get(
        payment_method,
        _Decline("invalid_payment_method", f"No such payment method: {payment_method!r}."),
    )


class SimulatedStripe:
    """``PaymentGateway`` simulating Stripe, its records in its own schema of ``database``."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._store_ready = False
        self._store_lock = asyncio.Lock()
        # Charges made at the same time are recorded by one transaction (each caller answered
        # once its charge is stored): a commit per charge was most of this service's database
        # work under load.
        self._charges = GroupCommit(self._record_charges, name="simulated-stripe-charges")

    async def ensure_store(self) -> None:
        """Create the simulator's schema and tables if missing (once per instance)."""
        if self._store_ready:
            return
        async with self._store_lock:
            if self._store_ready:
                return
            async with self._database.connection() as conn, conn.transaction():
                await conn.execute(_STORE_LOCK)
                await conn.execute(_STORE_DDL)
            self._store_ready = True

    async def charge(
        self,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> ChargeResult:
        try:
            await self.ensure_store()
            row = await self._charges.submit(
                _ChargeRequest(idempotency_key, amount, currency.upper(), payment_method, metadata)
            )
        except Exception as exc:
            _raise_unavailable_if_transient(exc)
            raise
        if row.status == ChargeStatus.SUCCEEDED:
            return ChargeSucceeded(payment_id=row.payment_id)
        return ChargeDeclined(
            decline_code=row.decline_code or "generic_decline",
            message=row.message or "",
            payment_id=row.payment_id,
        )

    async def refund(self, *, payment_id: str, amount: int, idempotency_key: str) -> RefundResult:
        try:
            await self.ensure_store()
            return await self._record_refund(
                payment_id=payment_id, amount=amount, idempotency_key=idempotency_key
            )
        except Exception as exc:
            _raise_unavailable_if_transient(exc)
            raise

    # --- the simulator's own records -------------------------------------------------------------

    async def _record_charges(self, requests: Sequence[_ChargeRequest]) -> list[_Charge]:
        """Make the charges, or read the ones made earlier under their keys, in one
        transaction; raises ``IdempotencyKeyReused`` if a key was first used differently."""
        declines = [charge_decline(r.payment_method, r.amount) for r in requests]
        async with self._database.connection() as conn:
            # Each statement commits by itself. A concurrent call with the same key waits on
            # the primary key, then conflicts.
            made = await conn.fetch(
                f"""
                INSERT INTO {SCHEMA}.charges (idempotency_key, payment_id, amount, currency,
                    payment_method, status, decline_code, message, metadata)
                SELECT k, p, a, c, m, s, d, msg, meta::jsonb
                  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::text[])
                    AS u(k, p, a, c, m, s, d, msg, meta)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING idempotency_key, payment_id, amount, currency, payment_method, status,
                    decline_code, message
                """,
                [r.key for r in requests],
                [f"pi_sim_{uuid.uuid4().hex[:24]}" for _ in requests],
                [r.amount for r in requests],
                [r.currency for r in requests],
                [r.payment_method for r in requests],
                [str(ChargeStatus.DECLINED if d else ChargeStatus.SUCCEEDED) for d in declines],
                [d.code if d else None for d in declines],
                [d.message if d else None for d in declines],
                [orjson.dumps(r.metadata).decode() for r in requests],
            )
            rows = list(made)
            earlier = {r.key for r in requests} - {row["idempotency_key"] for row in made}
            if earlier:
                # Keys used before (a retried call): a new statement reads them, and sees the
                # rows a concurrent call committed while the insert waited.
                rows += await conn.fetch(
                    "SELECT idempotency_key, payment_id, amount, currency, payment_method,"
                    f" status, decline_code, message FROM {SCHEMA}.charges"
                    " WHERE idempotency_key = ANY($1::text[])",
                    list(earlier),
                )
        by_key = {
            row["idempotency_key"]: _Charge(
                payment_id=row["payment_id"],
                amount=row["amount"],
                currency=row["currency"],
                payment_method=row["payment_method"],
                status=ChargeStatus(row["status"]),
                decline_code=row["decline_code"],
                message=row["message"],
            )
            for row in rows
        }
        charges = []
        for request in requests:
            charge = by_key[request.key]
            if (charge.amount, charge.currency, charge.payment_method) != (
                request.amount,
                request.currency,
                request.payment_method,
            ):
                raise IdempotencyKeyReused(
                    f"idempotency key {request.key!r} was first used for a different charge"
                )
            charges.append(charge)
        return charges

    async def _record_refund(
        self, *, payment_id: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        async with self._database.connection() as conn, conn.transaction():
            stored = await conn.fetchrow(
                "SELECT payment_id, amount, status, refund_id, reason, message"
                f" FROM {SCHEMA}.refunds WHERE idempotency_key = $1",
                idempotency_key,
            )
            if stored is None:
                # The charge's row lock serialises refunds of one charge.
                charge = await conn.fetchrow(
                    "SELECT amount, status, payment_method FROM"
                    f" {SCHEMA}.charges WHERE payment_id = $1 FOR UPDATE",
                    payment_id,
                )
                result = await _decide_refund(conn, charge, payment_id, amount)
                if isinstance(result, _AlreadyRefunded):
                    # Stripe answers charge_already_refunded, which the Stripe adapter reads
                    # as the earlier refund: the same answer here, nothing new recorded.
                    return RefundSucceeded(refund_id=result.refund_id)
                status = (
                    RefundStatus.SUCCEEDED
                    if isinstance(result, RefundSucceeded)
                    else RefundStatus.REFUSED
                )
                refused = result if isinstance(result, RefundRefused) else None
                refund_id = result.refund_id if isinstance(result, RefundSucceeded) else None
                await conn.execute(
                    f"""
                    INSERT INTO {SCHEMA}.refunds (idempotency_key, payment_id, amount, status,
                        refund_id, reason, message)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    """,
                    idempotency_key,
                    payment_id,
                    amount,
                    str(status),
                    refund_id,
                    refused.reason if refused else None,
                    refused.message if refused else None,
                )
                stored = {
                    "payment_id": payment_id,
                    "amount": amount,
                    "status": status,
                    "refund_id": refund_id,
                    "reason": refused.reason if refused else None,
                    "message": refused.message if refused else None,
                }
        if (stored["payment_id"], stored["amount"]) != (payment_id, amount):
            raise IdempotencyKeyReused(
                f"idempotency key {idempotency_key!r} was first used for a different refund"
            )
        if stored["status"] == RefundStatus.SUCCEEDED and stored["refund_id"] is not None:
            return RefundSucceeded(refund_id=stored["refund_id"])
        return RefundRefused(
            reason=stored["reason"] or "refund_failed", message=stored["message"] or ""
        )


@dataclass(frozen=True, slots=True)
class _ChargeRequest:
    key: str
    amount: int
    currency: str
    payment_method: str
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Charge:
    payment_id: str
    amount: int
    currency: str
    payment_method: str
    status: ChargeStatus
    decline_code: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class _AlreadyRefunded:
    refund_id: str


async def _decide_refund(
    conn: asyncpg.Connection, charge: asyncpg.Record | None, payment_id: str, amount: int
) -> RefundResult | _AlreadyRefunded:
    if charge is None:
        return RefundRefused("resource_missing", f"No such payment: {payment_id!r}.")
    if charge["status"] != ChargeStatus.SUCCEEDED:
        return RefundRefused(
            "payment_intent_unexpected_state", "Only a successful charge can be refunded."
        )
    if charge["payment_method"] in REFUND_FAILING_METHODS:
        return RefundRefused(
            "refund_failed", f"The refund failed ({charge['payment_method']} refuses refunds)."
        )
    succeeded = await conn.fetch(
        f"SELECT refund_id, amount FROM {SCHEMA}.refunds"
        " WHERE payment_id = $1 AND status = $2 ORDER BY created_at DESC",
        payment_id,
        str(RefundStatus.SUCCEEDED),
    )
    refunded = sum(row["amount"] for row in succeeded)
    if succeeded and refunded >= charge["amount"]:
        return _AlreadyRefunded(refund_id=str(succeeded[0]["refund_id"]))
    if amount <= 0 or refunded + amount > charge["amount"]:
        return RefundRefused(
            "amount_too_large",
            f"Refund of {amount} exceeds the {charge['amount'] - refunded} left on the charge.",
        )
    return RefundSucceeded(refund_id=f"re_sim_{uuid.uuid4().hex[:24]}")


def _raise_unavailable_if_transient(exc: Exception) -> None:
    # To its callers, the simulator's database being down is the processor being unreachable.
    if is_retriable_db_error(exc):
        raise GatewayUnavailable(f"simulated stripe: {type(exc).__name__}: {exc}") from exc
