"""The transactional outbox and inbox: the unit of work that writes a change together with the
messages it causes and the message it consumed, and the relay that publishes those messages.

It sits between ``sagakit.db`` (PostgreSQL) and ``sagakit.messaging`` (Kafka) and imports both;
neither imports it.
"""

from sagakit.outbox.unit_of_work import UnitOfWork

__all__ = ["UnitOfWork"]
