"""Message handlers of the notification service: plain async functions (message, unit of work).

At most one confirmation per order, even under redelivery and re-sent commands:

1. Claim the order in a short transaction of its own, committed at once: the ``notifications``
   row exists as ``sending`` (or already exists). It is not the unit of work's transaction,
   because that one also holds the inbox row: committing it early would make a crash after the
   claim look like a finished message, and no reply would ever be sent.
2. In the unit of work, lock that row (``FOR UPDATE``: a concurrent delivery of the same order
   waits here, then finds the outcome) and act on its status: a final one (``sent``,
   ``rejected``, ``expired``, ``voided``) replies the recorded outcome again and sends nothing;
   ``sending`` sends.
3. The new status commits with the reply and the inbox row, atomically.

Never after the saga's deadline (``envelope.deadline``; see ``domain/deadline.py``): once the
saga stops waiting it compensates and cancels the order, and a late "order confirmed" email cannot
be taken back. The send window is checked on arrival (then nothing is claimed: the row is written
``expired`` with the reply), again once the row is locked, and by the mailer before every SMTP
attempt (an outage retried by the consumer past the deadline ends there). Too late: the row turns
``expired`` and the reply is ``NotificationFailed(reason="EXPIRED")``, unless it is already
``sent`` or ``rejected`` (that outcome is replied again). ``expired`` is final like those: a
re-sent command replies EXPIRED again, deadline or not, and sends nothing. A command without a
deadline is never too late.

VoidOrderConfirmation is the compensation the orchestrator sends when this step timed out (on the
same topic and key as the send, so after it): the saga must learn whether an email went out. The
row is created if missing and locked like a send locks it, so a send in progress finishes first.
``sent`` answers OrderConfirmationAlreadySent (an email cannot be unsent: the saga completes);
anything else turns ``voided`` and answers OrderConfirmationVoided (the saga compensates). A
``voided`` order is never sent afterwards: a send command gets ``NotificationFailed("VOIDED")``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification.adapters.mailer import Mailer
from notification.adapters.orm import Notification
from notification.adapters.repository import NotificationRepository
from notification.domain.confirmation import build_confirmation, message_id_for
from notification.domain.deadline import SendWindow
from notification.domain.errors import (
    ConfirmationVoided,
    DeadlinePassed,
    DeliveryRejected,
    SmtpRejected,
)
from notification.domain.status import NotificationStatus
from notification.domain.void import void_detail
from notification.service_layer.accepted_sends import AcceptedSends
from sagakit.contracts import (
    REGISTRY,
    NotificationFailed,
    OrderConfirmationAlreadySent,
    OrderConfirmationSent,
    OrderConfirmationVoided,
    SendOrderConfirmation,
    VoidOrderConfirmation,
)
from sagakit.db.unit_of_work import UnitOfWork
from sagakit.messaging.consumer import Handler
from sagakit.messaging.envelope import Envelope, utcnow
from sagakit.settings import Topics

__all__ = ["REGISTRY", "make_handlers"]


def make_handlers(
    topics: Topics,
    *,
    mailer: Mailer,
    session_factory: async_sessionmaker[AsyncSession],
    sender: str,
    send_margin_s: float,
    clock: Callable[[], datetime] = utcnow,
    accepted: AcceptedSends | None = None,
) -> dict[str, Handler]:
    """The handlers by message type. ``session_factory`` opens the claim's own transaction;
    ``send_margin_s`` is how long before a command's deadline no send may start any more (the
    SMTP timeout: how long one send may take)."""
    replies = topics.replies("notification")
    send_margin = timedelta(seconds=send_margin_s)
    accepted = accepted if accepted is not None else AcceptedSends()

    async def send_order_confirmation(
        envelope: Envelope[SendOrderConfirmation], uow: UnitOfWork
    ) -> None:
        command = envelope.payload
        window = SendWindow.for_deadline(envelope.deadline, send_margin)
        repository = NotificationRepository(uow.session)
        if window.closed(clock()):
            # Too late already: claim nothing, so no delivery of this order sends from now on.
            await repository.add_expired(
                order_id=command.order_id,
                saga_id=envelope.saga_id,
                email=command.email,
                smtp_message_id=message_id_for(command.order_id),
                detail=window.detail,
            )
        else:
            async with session_factory() as claim_session:
                await NotificationRepository(claim_session).claim(
                    order_id=command.order_id,
                    saga_id=envelope.saga_id,
                    email=command.email,
                    smtp_message_id=message_id_for(command.order_id),
                )
                await claim_session.commit()

        notification = await repository.get_for_update(command.order_id)
        if notification is None:  # deleted between the claim and here: try the record again
            raise RuntimeError(f"notification of order {command.order_id} vanished after claim")

        # Checked again: waiting for the lock (another delivery mid-send) takes time too.
        if notification.status == NotificationStatus.SENDING and window.closed(clock()):
            NotificationRepository.mark_expired(notification, detail=window.detail)
        if notification.status != NotificationStatus.SENDING:
            uow.emit(replies, envelope.reply(_recorded_outcome(notification)))
            return

        if command.order_id in accepted:
            # This process sent it; only the commit of ``sent`` failed (the database went away).
            NotificationRepository.mark_sent(notification)
            uow.emit(replies, envelope.reply(_sent(notification)))
            return

        # ``sending``: first try, or an earlier try crashed (or hit an outage) mid-send. SMTP has
        # no idempotency key, so if that earlier try got as far as the server accepting the
        # message, the customer gets it twice. The Message-ID is the same on every try, so a
        # receiver can recognise and drop the duplicate. The window is the time between the
        # server's 250 after DATA and the commit below (and a 250 lost to a dropped connection,
        # which the mailer takes as transient and retries).
        try:
            message = build_confirmation(
                order_id=command.order_id,
                recipient=command.email,
                sender=sender,
                lines=command.lines,
                total=command.total,
                currency=command.currency,
                date=utcnow(),
            )
            # GatewayUnavailable propagates: nothing is recorded, the consumer retries the record
            # (and the next delivery finds the window closed if the outage outlasts it).
            await mailer.send(message, not_after=window.last_start)
        except DeadlinePassed:  # the window closed while the mailer retried a transient failure
            NotificationRepository.mark_expired(notification, detail=window.detail)
            uow.emit(replies, envelope.reply(_failed(notification)))
            return
        except DeliveryRejected as rejected:
            NotificationRepository.mark_rejected(
                notification, reason=rejected.reason, detail=rejected.detail
            )
            uow.emit(replies, envelope.reply(_failed(notification)))
            return
        accepted.remember(command.order_id)
        NotificationRepository.mark_sent(notification)
        uow.emit(replies, envelope.reply(_sent(notification)))

    async def void_order_confirmation(
        envelope: Envelope[VoidOrderConfirmation], uow: UnitOfWork
    ) -> None:
        order_id = envelope.payload.order_id
        repository = NotificationRepository(uow.session)
        # Created if missing, in the unit of work: nothing is sent, so the row commits with the
        # reply. From then on no SendOrderConfirmation of this order claims or sends anything.
        await repository.add_voided(
            order_id=order_id,
            saga_id=envelope.saga_id,
            smtp_message_id=message_id_for(order_id),
            detail=void_detail(None),
        )
        # The send path's lock: a delivery mid-send holds it, so we wait for its outcome.
        notification = await repository.get_for_update(order_id)
        if notification is None:  # deleted between the insert and here: try the record again
            raise RuntimeError(f"notification of order {order_id} vanished before the void")

        if notification.status == NotificationStatus.SENDING and order_id in accepted:
            NotificationRepository.mark_sent(notification)  # sent here; its commit was lost
        if notification.status == NotificationStatus.SENT:
            uow.emit(
                replies,
                envelope.reply(
                    OrderConfirmationAlreadySent(
                        order_id=order_id, smtp_message_id=notification.smtp_message_id
                    )
                ),
            )
            return
        if notification.status != NotificationStatus.VOIDED:
            # ``expired`` and ``rejected`` sent nothing. ``sending`` is a send that crashed (or
            # hit an outage) with no outcome recorded; we hold its lock, so none is running now.
            # It is taken as not sent: the one case where an email may exist for a voided order
            # is a crash between the SMTP server's 250 after DATA and that send's commit (or a
            # 250 lost with the connection). Nothing here can tell; the Message-ID is the order's.
            NotificationRepository.mark_voided(
                notification, detail=void_detail(notification.status, notification.reason)
            )
        # Already ``voided`` (a re-sent void): the same answer, nothing changes.
        uow.emit(replies, envelope.reply(OrderConfirmationVoided(order_id=order_id)))

    return {
        SendOrderConfirmation.message_type: send_order_confirmation,
        VoidOrderConfirmation.message_type: void_order_confirmation,
    }


def _recorded_outcome(notification: Notification) -> OrderConfirmationSent | NotificationFailed:
    """The reply for a finished row: ``sent``, or a failure (``rejected``, ``expired``,
    ``voided``)."""
    if notification.status == NotificationStatus.SENT:
        return _sent(notification)
    if notification.status == NotificationStatus.VOIDED:
        return NotificationFailed(
            order_id=notification.order_id,
            reason=ConfirmationVoided.reason,
            detail=notification.detail or void_detail(None),
        )
    return _failed(notification)


def _sent(notification: Notification) -> OrderConfirmationSent:
    return OrderConfirmationSent(
        order_id=notification.order_id, smtp_message_id=notification.smtp_message_id
    )


def _failed(notification: Notification) -> NotificationFailed:
    return NotificationFailed(
        order_id=notification.order_id,
        reason=notification.reason or SmtpRejected.reason,
        detail=notification.detail or "",
    )
