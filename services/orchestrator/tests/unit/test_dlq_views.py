"""The admin DLQ views are read from the service-layer dataclasses, field for field."""

import dataclasses
from datetime import UTC, datetime

from orchestrator.entrypoints.admin_dlq import (
    DeadLetterDetail,
    DeadLetterView,
    DlqTopicView,
    ReplayedView,
    letter_detail,
    letter_view,
)
from orchestrator.service_layer.dead_letters import (
    DeadLetter,
    Disposition,
    RecordRef,
    ReplayOutcome,
    TopicSummary,
)

AT = datetime(2026, 12, 5, tzinfo=UTC)


def letter(**changes: object) -> DeadLetter:
    d = DeadLetter(
        topic="inventory.commands.dlq",
        partition=1,
        offset=7,
        timestamp=AT,
        key="saga-1",
        original_topic="inventory.commands",
        error_code="handler_error",
        reason="boom",
        consumer_group="inventory",
        failed_at=AT,
        message_type="ReserveStock",
        message_id="m-1",
        saga_id="saga-1",
        replay_count=1,
        replayed_from="inventory.commands.dlq/1/3",
        headers={"error-code": "handler_error"},
        disposition=Disposition("replayed", "ops", AT, "fixed", "inventory.commands/1/99"),
        value=b'{"a": 1}\xff',
    )
    return dataclasses.replace(d, **changes)  # type: ignore[arg-type]


def test_every_view_field_comes_from_the_dataclass() -> None:
    d = letter()
    view = letter_view(d)
    for name in DeadLetterView.model_fields:
        expected = getattr(d, name)
        if name == "ref":
            expected = str(expected)
        elif name == "disposition":
            expected = dataclasses.asdict(expected)
            assert view.disposition is not None
            assert view.disposition.model_dump() == expected
            continue
        assert getattr(view, name) == expected, name
    assert view.ref == "inventory.commands.dlq/1/7"
    assert view.state == "replayed"


def test_the_detail_shows_headers_and_the_value_as_text() -> None:
    detail = letter_detail(letter())
    assert isinstance(detail, DeadLetterDetail)
    assert detail.headers == {"error-code": "handler_error"}
    assert detail.value == '{"a": 1}\ufffd'
    assert letter_detail(letter(value=None, disposition=None)).value is None
    assert letter_view(letter(disposition=None)).state == "unreplayed"


def test_topic_and_replay_views() -> None:
    t = DlqTopicView.model_validate(TopicSummary("a.dlq", "a", True, 5, 1, 1))
    assert (t.records, t.unreplayed) == (5, 3)
    r = ReplayedView.model_validate(ReplayOutcome(RecordRef("a.dlq", 0, 2), None, "alert"))
    assert (r.ref, r.replayed_to, r.refused) == ("a.dlq/0/2", None, "alert")
