"""Saga, step and order statuses, and which saga status ends which order status."""

from __future__ import annotations

from enum import StrEnum


class SagaStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"  # a step failed and nothing needed undoing
    COMPENSATED = "COMPENSATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_SAGA_STATUSES


TERMINAL_SAGA_STATUSES = frozenset(
    {
        SagaStatus.COMPLETED,
        SagaStatus.FAILED,
        SagaStatus.COMPENSATED,
        SagaStatus.COMPENSATION_FAILED,
    }
)


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"  # possibly done: its own compensation runs too
    ABANDONED = "ABANDONED"  # an operator cancelled the saga while it waited: possibly done too
    COMPENSATING = "COMPENSATING"
    COMPENSATED = "COMPENSATED"

    @property
    def needs_compensation(self) -> bool:
        return self in (
            StepStatus.SUCCEEDED,
            StepStatus.TIMED_OUT,
            StepStatus.ABANDONED,
            StepStatus.COMPENSATING,
        )


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


ORDER_STATUS_FOR = {
    SagaStatus.COMPLETED: OrderStatus.CONFIRMED,
    SagaStatus.FAILED: OrderStatus.CANCELLED,
    SagaStatus.COMPENSATED: OrderStatus.CANCELLED,
    SagaStatus.COMPENSATION_FAILED: OrderStatus.NEEDS_ATTENTION,
}
