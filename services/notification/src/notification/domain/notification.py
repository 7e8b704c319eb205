"""One order's confirmation and the changes its status may go through (no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from notification.domain.errors import ConfirmationVoided, DeadlinePassed
from notification.domain.status import NotificationStatus


@dataclass(slots=True)
class Confirmation:
    """The ``notifications`` row of an order: at most one per order."""

    order_id: uuid.UUID
    saga_id: uuid.UUID | None
    email: str | None
    smtp_message_id: str
    status: NotificationStatus
    reason: str | None = None
    detail: str | None = None
    changed: bool = False  # by this transaction: written back at its end

    def mark_sent(self) -> None:
        self._become(NotificationStatus.SENT, None, None)

    def mark_expired(self, *, detail: str) -> None:
        self._become(NotificationStatus.EXPIRED, DeadlinePassed.reason, detail)

    def mark_rejected(self, *, reason: str, detail: str) -> None:
        self._become(NotificationStatus.REJECTED, reason, detail)

    def mark_voided(self, *, detail: str) -> None:
        self._become(NotificationStatus.VOIDED, ConfirmationVoided.reason, detail)

    def _become(self, status: NotificationStatus, reason: str | None, detail: str | None) -> None:
        self.status, self.reason, self.detail = status, reason, detail
        self.changed = True
