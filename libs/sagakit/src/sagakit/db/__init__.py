"""PostgreSQL: engine, unit of work, and the transactional outbox and inbox."""
