"""Database models of the inventory service (its own PostgreSQL database)."""

from __future__ import annotations

from sagakit.db.models import Base, InboxMessage, OutboxMessage

__all__ = ["Base", "InboxMessage", "OutboxMessage"]
