"""Order confirmations: the notification service's rules, in the consumer's transaction.

At most one confirmation per order, even under redelivery and re-sent commands:

1. Claim the orders in a short transaction of their own, committed at once: each order's
   ``notifications`` row exists as ``sending`` (or already exists). It is not the unit of work's transaction,
   because that one also holds the inbox row: committing it early would make a crash after the
   claim look like a finished message, and no reply would ever be sent.
2. In the unit of work, lock the rows (``FOR UPDATE``: a concurrent delivery of the same order
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

A batch of commands (the consumer's partition batch) is handled together: one claim transaction,
one lock statement and one write for all of them; the sends of different orders go out at the
same time, each order's own commands in order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from notification.adapters import notification_store as store
from notification.adapters.mailer import Mailer
from notification.adapters.notification_store import NewRow
from notification.domain.confirmation import build_confirmation, message_id_for
from notification.domain.deadline import SendWindow
from notification.domain.errors import (
    ConfirmationVoided,
    DeadlinePassed,
    DeliveryRejected,
    SmtpRejected,
)
from notification.domain.notification import Confirmation
from notification.domain.status import NotificationStatus
from notification.domain.void import void_detail
from notification.service_layer.accepted_sends import AcceptedSends
from sagakit.contracts import (
    NotificationFailed,
    OrderConfirmationAlreadySent,
    OrderConfirmationSent,
    OrderConfirmationVoided,
    SendOrderConfirmation,
    VoidOrderConfirmation,
)
from sagakit.db.pool import Database
from sagakit.messaging.envelope import Envelope, utcnow
from sagakit.messaging.registry import Message
from sagakit.ops.logging import log_ids
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.telemetry import client_span

__all__ = ["Confirmations"]


class Confirmations:
    """The rules above. ``send_margin_s`` is how long before a command's deadline no send may
    start any more (the SMTP timeout: how long one send may take)."""

    def __init__(
        self,
        *,
        mailer: Mailer,
        database: Database,
        sender: str,
        send_margin_s: float,
        clock: Callable[[], datetime] = utcnow,
        accepted: AcceptedSends | None = None,
    ) -> None:
        self._mailer = mailer
        self._database = database
        self._sender = sender
        self._margin = timedelta(seconds=send_margin_s)
        self._clock = clock
        self._accepted = accepted if accepted is not None else AcceptedSends()

    async def handle(self, uow: UnitOfWork, envelopes: Sequence[Envelope[Any]]) -> list[Message]:
        """The reply to each command, in order (the caller emits them and commits)."""
        now = self._clock()
        windows = [SendWindow.for_deadline(e.deadline, self._margin) for e in envelopes]
        claims: list[NewRow] = []
        without_send: list[NewRow] = []
        for envelope, window in zip(envelopes, windows, strict=True):
            order_id = envelope.payload.order_id
            if isinstance(envelope.payload, VoidOrderConfirmation):
                # Created if missing, in the unit of work: nothing is sent, so the row commits
                # with the reply. From then on no send of this order claims or sends anything.
                without_send.append(
                    NewRow(
                        order_id,
                        envelope.saga_id,
                        None,
                        message_id_for(order_id),
                        NotificationStatus.VOIDED,
                        ConfirmationVoided.reason,
                        void_detail(None),
                    )
                )
            elif window.closed(now):
                # Too late already: claim nothing, so no delivery of this order sends from now on.
                without_send.append(
                    NewRow(
                        order_id,
                        envelope.saga_id,
                        envelope.payload.email,
                        message_id_for(order_id),
                        NotificationStatus.EXPIRED,
                        DeadlinePassed.reason,
                        window.detail,
                    )
                )
            else:
                claims.append(
                    NewRow(
                        order_id,
                        envelope.saga_id,
                        envelope.payload.email,
                        message_id_for(order_id),
                        NotificationStatus.SENDING,
                    )
                )
        if claims:
            async with self._database.connection() as conn:  # one statement: its own commit
                await store.claim(conn, claims)
        await store.add_unless_present(uow.conn, without_send)
        # The send path's lock: a delivery mid-send holds it, so we wait for its outcome.
        rows = await store.lock(uow.conn, (e.payload.order_id for e in envelopes))

        replies: list[Message | None] = [None] * len(envelopes)
        by_order: dict[uuid.UUID, list[int]] = {}
        for i, envelope in enumerate(envelopes):
            by_order.setdefault(envelope.payload.order_id, []).append(i)

        async def one_order(order_id: uuid.UUID, positions: list[int]) -> None:
            row = rows.get(order_id)
            if row is None:  # deleted between the claim and here: try the records again
                raise RuntimeError(f"notification of order {order_id} vanished after claim")
            for i in positions:
                envelope = envelopes[i]
                if isinstance(envelope.payload, VoidOrderConfirmation):
                    replies[i] = self._void(row)
                else:
                    replies[i] = await self._send(
                        row, envelope.payload, windows[i], envelope.traceparent
                    )

        # Every send finishes (none is cancelled half-way); an outage then fails the batch and
        # the consumer retries it: what was accepted meanwhile is remembered, not sent again.
        outcomes = await asyncio.gather(
            *(one_order(o, positions) for o, positions in by_order.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        store.save(uow, rows.values())
        return [reply for reply in replies if reply is not None]

    async def _send(
        self, row: Confirmation, command: SendOrderConfirmation, window: SendWindow, trace: str
    ) -> Message:
        # Checked again: waiting for the lock (another delivery mid-send) takes time too.
        if row.status == NotificationStatus.SENDING and window.closed(self._clock()):
            row.mark_expired(detail=window.detail)
        if row.status != NotificationStatus.SENDING:
            return _recorded_outcome(row)
        if command.order_id in self._accepted:
            # This process sent it; only the commit of ``sent`` failed (the database went away).
            row.mark_sent()
            return _sent(row)

        # ``sending``: first try, or an earlier try crashed (or hit an outage) mid-send. SMTP has
        # no idempotency key, so if that earlier try got as far as the server accepting the
        # message, the customer gets it twice. The Message-ID is the same on every try, so a
        # receiver can recognise and drop the duplicate. The window is the time between the
        # server's 250 after DATA and the commit (and a 250 lost to a dropped connection,
        # which the mailer takes as transient and retries).
        try:
            message = build_confirmation(
                order_id=command.order_id,
                recipient=command.email,
                sender=self._sender,
                lines=command.lines,
                total=command.total,
                currency=command.currency,
                date=utcnow(),
            )
            # GatewayUnavailable propagates: nothing is recorded, the consumer retries the record
            # (and the next delivery finds the window closed if the outage outlasts it).
            with (
                client_span(
                    "smtp send",
                    trace,  # the command's consumer span
                    {"saga.id": str(row.saga_id), "order.id": str(command.order_id)},
                ),
                log_ids(row.saga_id, command.order_id, trace),
            ):
                await self._mailer.send(message, not_after=window.last_start)
        except DeadlinePassed:  # the window closed while the mailer retried a transient failure
            row.mark_expired(detail=window.detail)
            return _failed(row)
        except DeliveryRejected as rejected:
            row.mark_rejected(reason=rejected.reason, detail=rejected.detail)
            return _failed(row)
        self._accepted.remember(command.order_id)
        row.mark_sent()
        return _sent(row)

    def _void(self, row: Confirmation) -> Message:
        if row.status == NotificationStatus.SENDING and row.order_id in self._accepted:
            row.mark_sent()  # sent here; its commit was lost
        if row.status == NotificationStatus.SENT:
            return OrderConfirmationAlreadySent(
                order_id=row.order_id, smtp_message_id=row.smtp_message_id
            )
        if row.status != NotificationStatus.VOIDED:
            # ``expired`` and ``rejected`` sent nothing. ``sending`` is a send that crashed (or
            # hit an outage) with no outcome recorded; we hold its lock, so none is running now.
            # It is taken as not sent: the one case where an email may exist for a voided order
            # is a crash between the SMTP server's 250 after DATA and that send's commit (or a
            # 250 lost with the connection). Nothing here can tell; the Message-ID is the order's.
            row.mark_voided(detail=void_detail(row.status, row.reason))
        # Already ``voided`` (a re-sent void): the same answer, nothing changes.
        return OrderConfirmationVoided(order_id=row.order_id)


def _recorded_outcome(row: Confirmation) -> OrderConfirmationSent | NotificationFailed:
    """The reply for a finished row: ``sent``, or a failure (``rejected``, ``expired``,
    ``voided``)."""
    if row.status == NotificationStatus.SENT:
        return _sent(row)
    if row.status == NotificationStatus.VOIDED:
        return NotificationFailed(
            order_id=row.order_id,
            reason=ConfirmationVoided.reason,
            detail=row.detail or void_detail(None),
        )
    return _failed(row)


def _sent(row: Confirmation) -> OrderConfirmationSent:
    return OrderConfirmationSent(order_id=row.order_id, smtp_message_id=row.smtp_message_id)


def _failed(row: Confirmation) -> NotificationFailed:
    return NotificationFailed(
        order_id=row.order_id,
        reason=row.reason or SmtpRejected.reason,
        detail=row.detail or "",
    )
