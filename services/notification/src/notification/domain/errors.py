"""Business outcomes the handler turns into ``NotificationFailed``: permanent delivery failures,
a confirmation that is too late to send, and one the saga has voided.

Transient failures are not here: they are ``sagakit.errors.GatewayUnavailable`` (retried).
"""

from __future__ import annotations

from sagakit.errors import BusinessError


class DeliveryRejected(BusinessError):
    """The confirmation can never be delivered as addressed; trying again changes nothing."""

    code = "delivery_rejected"
    # The stable ``reason`` of the failure reply.
    reason: str = "DELIVERY_REJECTED"

    @property
    def detail(self) -> str:
        return self.message


class SmtpRejected(DeliveryRejected):
    """The SMTP server answered with a permanent (5xx) reply, e.g. 550 on RCPT TO."""

    code = "smtp_rejected"
    reason = "SMTP_REJECTED"

    def __init__(self, smtp_code: int | None, smtp_text: str) -> None:
        self.smtp_code = smtp_code
        self.smtp_text = smtp_text
        super().__init__(f"{smtp_code} {smtp_text}" if smtp_code is not None else smtp_text)


class InvalidRecipient(DeliveryRejected):
    """The address passed the contract's loose pattern but is not one we can put in a header
    exactly as given (``a,b@x.io``, ``a(comment)@x.io``): sending it would mail someone else."""

    code = "invalid_recipient"
    reason = "INVALID_RECIPIENT"


class DeadlinePassed(BusinessError):
    """The saga's deadline for this command has passed, or is too close for a send to finish
    before it: the saga has stopped waiting and may have cancelled the order, so we never send."""

    code = "deadline_passed"
    reason: str = "EXPIRED"


class ConfirmationVoided(BusinessError):
    """The saga timed out on this step and voided it (``VoidOrderConfirmation``) before anything
    was sent: it has compensated, or is compensating, the order, so we never send."""

    code = "confirmation_voided"
    reason: str = "VOIDED"
