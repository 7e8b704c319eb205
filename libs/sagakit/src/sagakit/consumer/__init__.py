"""Consuming Kafka records into database transactions: the loop, group commit, dead letters."""

from sagakit.consumer.dead_letter import DLQ
from sagakit.consumer.loop import BatchHandler, Consumer, Handler

__all__ = ["DLQ", "BatchHandler", "Consumer", "Handler"]
