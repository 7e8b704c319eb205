"""Reads and writes of the ``notifications`` table."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification.adapters.orm import Notification
from notification.domain.errors import ConfirmationVoided, DeadlinePassed
from notification.domain.status import NotificationStatus


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(
        self, *, order_id: uuid.UUID, saga_id: uuid.UUID | None, email: str, smtp_message_id: str
    ) -> None:
        """Insert the order's row as ``sending``, or count one more attempt on an unfinished one.

        A finished row (``sent``, ``rejected``, ``expired``, ``voided``) is left exactly as it is.
        """
        stmt = insert(Notification).values(
            order_id=order_id,
            saga_id=saga_id,
            email=email,
            smtp_message_id=smtp_message_id,
            status=NotificationStatus.SENDING.value,
            attempts=1,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Notification.order_id],
            set_={"attempts": Notification.attempts + 1},
            where=Notification.status == NotificationStatus.SENDING.value,
        )
        await self._session.execute(stmt)

    async def add_expired(
        self,
        *,
        order_id: uuid.UUID,
        saga_id: uuid.UUID | None,
        email: str,
        smtp_message_id: str,
        detail: str,
    ) -> None:
        """Insert the order's row as ``expired`` (no send was ever started) unless it exists.

        In the caller's transaction, unlike ``claim``: nothing is sent, so the outcome commits
        with the reply. An existing row is left for the caller to lock and judge.
        """
        await self._add_unless_present(
            order_id,
            saga_id,
            email,
            smtp_message_id,
            NotificationStatus.EXPIRED,
            DeadlinePassed.reason,
            detail,
        )

    async def add_voided(
        self,
        *,
        order_id: uuid.UUID,
        saga_id: uuid.UUID | None,
        smtp_message_id: str,
        detail: str,
    ) -> None:
        """Insert the order's row as ``voided`` (no send was ever asked for) unless it exists.

        In the caller's transaction, like ``add_expired``: nothing is sent, so the outcome commits
        with the reply. No email is known yet (the void carries none). An existing row is left
        for the caller to lock and judge.
        """
        await self._add_unless_present(
            order_id,
            saga_id,
            None,
            smtp_message_id,
            NotificationStatus.VOIDED,
            ConfirmationVoided.reason,
            detail,
        )

    async def _add_unless_present(
        self,
        order_id: uuid.UUID,
        saga_id: uuid.UUID | None,
        email: str | None,
        smtp_message_id: str,
        status: NotificationStatus,
        reason: str,
        detail: str,
    ) -> None:
        """Insert a row that records an outcome without a send; an existing row is kept."""
        stmt = insert(Notification).values(
            order_id=order_id,
            saga_id=saga_id,
            email=email,
            smtp_message_id=smtp_message_id,
            status=status.value,
            reason=reason,
            detail=detail,
        )
        await self._session.execute(stmt.on_conflict_do_nothing(index_elements=["order_id"]))

    async def get_for_update(self, order_id: uuid.UUID) -> Notification | None:
        """The order's row, locked until this transaction ends (serialises concurrent sends)."""
        stmt = select(Notification).where(Notification.order_id == order_id).with_for_update()
        return (await self._session.execute(stmt)).scalar_one_or_none()

    @staticmethod
    def mark_sent(notification: Notification) -> None:
        notification.status = NotificationStatus.SENT.value
        notification.sent_at = func.now()  # the database clock, like created_at
        notification.reason = None
        notification.detail = None

    @staticmethod
    def mark_expired(notification: Notification, *, detail: str) -> None:
        notification.status = NotificationStatus.EXPIRED.value
        notification.reason = DeadlinePassed.reason
        notification.detail = detail

    @staticmethod
    def mark_rejected(notification: Notification, *, reason: str, detail: str) -> None:
        notification.status = NotificationStatus.REJECTED.value
        notification.reason = reason
        notification.detail = detail

    @staticmethod
    def mark_voided(notification: Notification, *, detail: str) -> None:
        notification.status = NotificationStatus.VOIDED.value
        notification.reason = ConfirmationVoided.reason
        notification.detail = detail
