"""When a confirmation may still be sent: the saga's deadline, less a margin (pure: no clock).

The orchestrator stamps each command with ``deadline``: the time it stops waiting for the answer
and, for this step, starts compensating (refund, release, order CANCELLED). A confirmation that
reaches the customer after that confirms a cancelled order, and an email cannot be taken back; so
no send may *start* once it could still be running at the deadline. ``margin`` is how long one
send may take: the SMTP timeout. That is a simple bound, not a strict one (the timeout applies per
SMTP operation), so SMTP_TIMEOUT_S should stay well below the step timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class SendWindow:
    deadline: datetime | None
    margin: timedelta

    @classmethod
    def for_deadline(cls, deadline: datetime | None, margin: timedelta) -> SendWindow:
        # The header is UTC; a naive value would make every comparison raise, so say it is UTC.
        if deadline is not None and deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=UTC)
        return cls(deadline, margin)

    @property
    def last_start(self) -> datetime | None:
        """The last moment a send may start; None: no deadline, always open."""
        return None if self.deadline is None else self.deadline - self.margin

    def closed(self, now: datetime) -> bool:
        last_start = self.last_start
        return last_start is not None and now >= last_start

    @property
    def detail(self) -> str:
        """The failure reply's ``detail`` (recorded once, replayed on every re-sent command)."""
        deadline = self.deadline.isoformat() if self.deadline else "none"
        return (
            f"not sent: the saga stops waiting at {deadline}, and a send that started then "
            f"could end after it (send margin {self.margin.total_seconds():g}s)"
        )
