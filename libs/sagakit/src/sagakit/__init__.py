"""Shared saga plumbing: settings, errors, message contracts, Kafka wrappers, unit of work."""
