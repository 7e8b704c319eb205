"""Consuming Kafka records into database transactions: the loop, group commit, dead letters."""

from sagakit.consumer.dead_letter import DLQ
from sagakit.consumer.loop import BatchHandler, Consumer, FailureHook, Handler

__all__ = ["DLQ", "BatchHandler", "Consumer", "FailureHook", "Handler"]
