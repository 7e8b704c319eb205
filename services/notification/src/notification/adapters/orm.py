"""Database models of the notification service (its own PostgreSQL database)."""

from __future__ import annotations

from sagakit.db.models import Base, InboxMessage, OutboxMessage

__all__ = ["Base", "InboxMessage", "OutboxMessage"]
