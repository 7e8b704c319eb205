"""The send window: until the saga's deadline less the send margin; no deadline, always open."""

from datetime import UTC, datetime, timedelta

import pytest

from notification.domain.deadline import SendWindow

pytestmark = pytest.mark.unit

DEADLINE = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
MARGIN = timedelta(seconds=10)


def test_no_deadline_is_never_closed() -> None:
    window = SendWindow.for_deadline(None, MARGIN)
    assert window.last_start is None
    assert not window.closed(datetime.max.replace(tzinfo=UTC))


@pytest.mark.parametrize(
    ("now", "closed"),
    [
        (DEADLINE - timedelta(seconds=11), False),
        (DEADLINE - timedelta(seconds=10, microseconds=1), False),
        (DEADLINE - timedelta(seconds=10), True),  # a send starting now could end after it
        (DEADLINE - timedelta(seconds=1), True),
        (DEADLINE + timedelta(days=1), True),
    ],
)
def test_it_closes_one_margin_before_the_deadline(now: datetime, closed: bool) -> None:
    window = SendWindow.for_deadline(DEADLINE, MARGIN)
    assert window.last_start == DEADLINE - MARGIN
    assert window.closed(now) is closed


def test_a_naive_deadline_is_taken_as_utc() -> None:
    window = SendWindow.for_deadline(DEADLINE.replace(tzinfo=None), MARGIN)
    assert window.deadline == DEADLINE
    assert window.closed(DEADLINE)


def test_the_detail_names_the_deadline_and_the_margin() -> None:
    detail = SendWindow.for_deadline(DEADLINE, MARGIN).detail
    assert detail.startswith("not sent: ")
    assert "2030-01-01T12:00:00+00:00" in detail
    assert "10s" in detail
