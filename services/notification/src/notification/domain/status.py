"""Where one order's confirmation stands."""

from __future__ import annotations

from enum import StrEnum


class NotificationStatus(StrEnum):
    # Claimed: a send is under way, or was under way when the process crashed.
    SENDING = "sending"
    # Final states: a re-sent command replies the same outcome again and sends nothing.
    SENT = "sent"
    REJECTED = "rejected"
    # Not sent because the saga's deadline had passed (or was too close): never sent afterwards.
    EXPIRED = "expired"
    # The saga gave up on this step (it timed out) and voided it before anything was sent: never
    # sent afterwards, whatever command comes later.
    VOIDED = "voided"
