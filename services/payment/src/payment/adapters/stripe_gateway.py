"""The Stripe gateway: a PaymentIntent created and confirmed in one call, refunds, idempotency keys.

What counts as what:
- a decline (``CardError``, or a request Stripe rejects such as an unknown payment method) is a
  definitive ``ChargeDeclined``: nothing was charged;
- anything that leaves the outcome unknown (timeout, connection error, 429, 5xx, a key Stripe
  will not accept right now) raises ``GatewayUnavailable``: the consumer repeats the call with
  the same idempotency key, and Stripe answers the repeat with the first call's result;
- a PaymentIntent still ``processing`` is looked up again before anything is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import stripe

from payment.adapters.stripe_http import AsyncHttpxClient
from payment.domain.gateway import (
    ChargeDeclined,
    ChargeResult,
    ChargeSucceeded,
    IdempotencyKeyReused,
    RefundRefused,
    RefundResult,
    RefundSucceeded,
)
from sagakit.errors import GatewayUnavailable

log = logging.getLogger(__name__)

# Errors after which Stripe may or may not have acted: only a retry with the same key can tell.
_TRANSIENT = (
    stripe.APIConnectionError,  # connection refused or reset, and the HTTP client's timeouts
    stripe.RateLimitError,  # 429
    stripe.APIError,  # 5xx, 409 idempotency key in use by a concurrent request
    # A wrong or revoked key is an operator's fix; the records wait rather than being declined.
    stripe.AuthenticationError,
    stripe.PermissionError,
)
_REFUND_ACCEPTED = frozenset({"succeeded", "pending"})


class StripeGateway:
    """``PaymentGateway`` over Stripe's API with the official client's async methods."""

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str,
        timeout_s: float,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._http = http_client or AsyncHttpxClient(timeout_s=timeout_s)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            # No retries inside the call: the consumer retries the record, with the same key.
            max_network_retries=0,
        )

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

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
            async with self._reaching_stripe("charge"):
                intent = await self._client.v1.payment_intents.create_async(
                    {
                        "amount": amount,
                        "currency": currency.lower(),
                        "confirm": True,
                        "payment_method": payment_method,
                        # (``payment_method_types`` in API versions before the SDK's own)
                        "allowed_payment_method_types": ["card"],
                        # The customer is not in this conversation to pass 3-D Secure: fail
                        # with a card error (authentication_required) rather than wait.
                        "error_on_requires_action": True,
                        "metadata": metadata,
                    },
                    options={"idempotency_key": idempotency_key},
                )
                if intent.status == "processing":
                    intent = await self._client.v1.payment_intents.retrieve_async(intent.id)
        except stripe.CardError as exc:
            error = exc.error
            return ChargeDeclined(
                decline_code=(error.decline_code if error else None) or exc.code or "card_declined",
                message=exc.user_message or "Your card was declined.",
                payment_id=_intent_id(exc),
            )
        except stripe.InvalidRequestError as exc:
            # Stripe refused the request itself (unknown payment method, amount too small...):
            # nothing was charged and repeating it cannot help, so the order is declined.
            log.warning("stripe rejected a charge (%s): %s", exc.code, exc.user_message)
            return ChargeDeclined(
                decline_code=exc.code or "invalid_request",
                message=exc.user_message or "The payment request was rejected.",
                payment_id=_intent_id(exc),
            )
        return intent_outcome(intent)

    async def refund(self, *, payment_id: str, amount: int, idempotency_key: str) -> RefundResult:
        try:
            async with self._reaching_stripe("refund"):
                refund = await self._client.v1.refunds.create_async(
                    {"payment_intent": payment_id, "amount": amount},
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":
                earlier = await self._earlier_refund(payment_id)
                if earlier is not None:
                    return RefundSucceeded(refund_id=earlier)
            return RefundRefused(
                reason=exc.code or "invalid_request",
                message=exc.user_message or "The refund was refused.",
            )
        return refund_outcome(refund)

    async def _earlier_refund(self, payment_id: str) -> str | None:
        """The refund that already returned this payment (for ``charge_already_refunded``)."""
        async with self._reaching_stripe("refund lookup"):
            refunds = await self._client.v1.refunds.list_async(
                {"payment_intent": payment_id, "limit": 10}
            )
        for refund in refunds.data:
            if refund.status in _REFUND_ACCEPTED:
                return refund.id
        return None

    @contextlib.asynccontextmanager
    async def _reaching_stripe(self, what: str) -> AsyncIterator[None]:
        """Bound the whole exchange and turn "outcome unknown" into ``GatewayUnavailable``."""
        try:
            async with asyncio.timeout(self._timeout_s):
                yield
        except TimeoutError as exc:
            raise GatewayUnavailable(f"stripe: {what} timed out after {self._timeout_s}s") from exc
        except _TRANSIENT as exc:
            raise GatewayUnavailable(
                f"stripe: {what} failed ({type(exc).__name__}: {exc.user_message})"
            ) from exc
        except stripe.IdempotencyError as exc:
            raise IdempotencyKeyReused(f"stripe: {exc.user_message}") from exc


def intent_outcome(intent: stripe.PaymentIntent) -> ChargeResult:
    """What a confirmed PaymentIntent's status means for the order."""
    if intent.status == "succeeded":
        return ChargeSucceeded(payment_id=intent.id)
    if intent.status == "processing":
        # Not decided yet: asked again later under the same key, then looked up again.
        raise GatewayUnavailable(f"stripe: payment {intent.id} is still processing")
    if intent.status == "requires_action":
        # 3-D Secure and the like need the customer, who is not in this conversation.
        return ChargeDeclined(
            decline_code="authentication_required",
            message="The card requires authentication, which this checkout cannot perform.",
            payment_id=intent.id,
        )
    # requires_payment_method, canceled, ...: not charged. Real Stripe answers a failed
    # confirmation with a card error instead; this covers anything else it may return.
    # Absent error fields are missing attributes, not None, on Stripe objects.
    error = intent.last_payment_error
    code = getattr(error, "decline_code", None) or getattr(error, "code", None)
    message = getattr(error, "message", None)
    return ChargeDeclined(
        decline_code=code or f"payment_{intent.status}",
        message=message or f"The payment was not completed (status {intent.status}).",
        payment_id=intent.id,
    )


def refund_outcome(refund: stripe.Refund) -> RefundResult:
    """``pending`` counts as done: Stripe has accepted the refund and carries it out."""
    if refund.status in _REFUND_ACCEPTED:
        return RefundSucceeded(refund_id=refund.id)
    if refund.status == "requires_action":
        return RefundRefused(
            reason="refund_requires_action",
            message=f"Refund {refund.id} needs action in the Stripe dashboard.",
        )
    return RefundRefused(
        reason=refund.failure_reason or "refund_failed",
        message=f"Refund {refund.id} ended {refund.status}.",
    )


def _intent_id(exc: stripe.StripeError) -> str | None:
    intent = exc.error.payment_intent if exc.error else None
    return intent.id if intent is not None else None
