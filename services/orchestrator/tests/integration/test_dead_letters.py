"""Dead-letter operations on real Kafka and the real orchestrator database: a consumer whose
handler fails dead-letters a record; an operator replays it once the cause is fixed (handled
exactly once), replays one that still fails (it comes back once, with its count, and is never
sent round again by itself), discards with a reason; every action is audited. Then the admin
routes over the same service layer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY as METRICS
from sqlalchemy import text

from orchestrator.bootstrap import bootstrap
from orchestrator.service_layer.dead_letters import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetters,
    NotReplayable,
    replay_headers,
)
from orchestrator.settings import Settings
from sagakit.consumer.dead_letter import DLQ, Replay
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.producer import Producer
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.kafka import create_topics, read_topic, unique_name
from sagakit.testing.messages import DoThing
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration

TOKEN = {"Authorization": "Bearer local-admin-token", "X-Operator": "alice"}


@dataclass
class Bench:
    """A topic, its DLQ, a consumer whose handler fails for the names in ``broken``."""

    topic: str
    producer: Producer
    dead_letters: Callable[..., DeadLetters]
    broken: set[str] = field(default_factory=set)
    handled: list[uuid.UUID] = field(default_factory=list)

    async def handle(self, envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
        if envelope.payload.name in self.broken:
            raise RuntimeError(f"product {envelope.payload.name} missing")

        async def done() -> None:
            self.handled.append(envelope.message_id)

        uow.after_commit(done)

    async def records(self, dl: DeadLetters, expected: int) -> list[DeadLetter]:
        async def found() -> list[DeadLetter] | None:
            page = await dl.list_records(DeadLetterFilter(topic=self.topic))
            return page.records if len(page.records) >= expected else None

        got = await eventually(found, timeout=20, interval=0.3, what=f"{expected} DLQ records")
        assert len(got) == expected  # type: ignore[arg-type]
        return got  # type: ignore[return-value]


@pytest_asyncio.fixture
async def bench(
    kafka_bootstrap, orchestrator_sessions, orchestrator_database
) -> AsyncIterator[Bench]:  # type: ignore[no-untyped-def]
    topic = unique_name("dlq") + ".inventory.commands"
    await create_topics(kafka_bootstrap, [topic, topic + ".dlq"], partitions=1)

    async with running_producer(kafka_bootstrap) as producer:

        def make(**options: object) -> DeadLetters:
            return DeadLetters(
                lambda: UnitOfWork(orchestrator_database),
                producer,
                bootstrap_servers=kafka_bootstrap,
                source_topics=[topic],
                **options,  # type: ignore[arg-type]
            )

        bench = Bench(topic, producer, make)
        async with running_consumer(
            kafka_bootstrap,
            topic,
            {"DoThing": bench.handle},
            orchestrator_database,
            producer,
            handler_max_attempts=1,
        ):
            yield bench


async def audit(sessions, target_prefix: str) -> list[tuple[str, str, str, str | None, str]]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT operator, action, target, reason, outcome FROM admin_actions"
                " WHERE target LIKE :t ORDER BY id"
            ),
            {"t": target_prefix + "%"},
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_fixed_poison_record_replayed_is_handled_exactly_once(
    bench: Bench, kafka_bootstrap, orchestrator_sessions
) -> None:  # type: ignore[no-untyped-def]
    dl = bench.dead_letters()
    bench.broken.add("widget-x")
    envelope = Envelope(payload=DoThing(name="widget-x", amount=1), saga_id=uuid.uuid4())
    await bench.producer.publish(bench.topic, envelope)

    [letter] = await bench.records(dl, 1)
    assert letter.topic == bench.topic + ".dlq"
    assert letter.original_topic == bench.topic
    assert letter.error_code == "handler_failed"
    assert "product widget-x missing" in (letter.reason or "")
    assert letter.message_id == str(envelope.message_id)
    assert letter.key == str(envelope.saga_id)
    assert (letter.replay_count, letter.state) == (0, "unreplayed")
    assert bench.handled == []
    [summary] = await dl.summary()
    assert (summary.records, summary.unreplayed) == (1, 1)
    await dl.refresh_gauge()
    assert METRICS.get_sample_value("saga_dlq_unreplayed", {"topic": letter.topic}) == 1

    bench.broken.clear()  # the cause is fixed (the product exists now)
    outcome = await dl.replay(letter.ref, who="alice", reason="product added")
    assert outcome.replayed_to is not None
    assert outcome.replayed_to.startswith(bench.topic + "/")
    await eventually(lambda: _true(bench.handled), timeout=20, what="the replayed record handled")

    # The copy on the original topic: same key and value, its headers kept, the replay's added.
    copies = await read_topic(kafka_bootstrap, bench.topic, expected=2, timeout=10)
    copy = copies[-1]
    headers = {k: bytes(v).decode() for k, v in copy.headers}
    assert (copy.key, copy.value) == (envelope.key, envelope.value())
    assert headers[Replay.FROM] == str(letter.ref)
    assert headers[Replay.COUNT] == "1"
    assert headers["message-id"] == str(envelope.message_id)
    assert not any(k.startswith("dlq-") for k in headers)

    # Never twice: the replay tool refuses, and a duplicate copy is dropped by the inbox.
    with pytest.raises(NotReplayable) as refused:
        await dl.replay(letter.ref, who="bob", reason="again")
    assert refused.value.code == "already_replayed"
    again = await dl.get(letter.ref)
    await bench.producer.send_raw(
        bench.topic, key=again.raw_key, value=again.value, headers=replay_headers(again)
    )
    await asyncio.sleep(1.0)
    assert bench.handled == [envelope.message_id]

    shown = await dl.get(letter.ref)
    assert shown.state == "replayed"
    assert shown.disposition is not None
    assert (shown.disposition.operator, shown.disposition.replayed_to) == (
        "alice",
        outcome.replayed_to,
    )
    [summary] = await dl.summary()
    assert (summary.replayed, summary.unreplayed) == (1, 0)
    await dl.refresh_gauge()
    assert METRICS.get_sample_value("saga_dlq_unreplayed", {"topic": letter.topic}) == 0
    target = f"dlq:{letter.ref}"
    assert await audit(orchestrator_sessions, "dlq:") == [
        ("alice", "dlq_replay", target, "product added", "done"),
        ("bob", "dlq_replay", target, "again", "refused"),
    ]


async def test_a_replay_that_still_fails_returns_once_with_its_count_and_never_loops(
    bench: Bench, orchestrator_sessions
) -> None:  # type: ignore[no-untyped-def]
    dl = bench.dead_letters(max_replays=1)
    bench.broken.add("still-bad")
    envelope = Envelope(payload=DoThing(name="still-bad", amount=1), saga_id=uuid.uuid4())
    await bench.producer.publish(bench.topic, envelope)
    [first] = await bench.records(dl, 1)
    written_before = (
        METRICS.get_sample_value(
            "saga_dlq_records_written_total", {"topic": first.topic, "returned": "true"}
        )
        or 0
    )

    matching = DeadLetterFilter(topic=bench.topic, reason="still-bad missing")
    report = await dl.replay_matching(matching, who="bob", reason="fixed, we think")
    assert [o.ref for o in report.replayed] == [first.ref]
    assert report.next_cursor is None

    first_again, returned = await bench.records(dl, 2)
    assert first_again.state == "replayed"
    assert returned.replay_count == 1
    assert returned.replayed_from == str(first.ref)
    assert returned.message_id == first.message_id
    assert returned.error_code == "handler_failed"
    assert (
        METRICS.get_sample_value(
            "saga_dlq_records_written_total", {"topic": first.topic, "returned": "true"}
        )
        == written_before + 1
    )

    # A filtered replay never takes a record that came back; one by one, the limit holds.
    again = await dl.replay_matching(matching, who="bob", reason="once more")
    assert (again.replayed, again.skipped) == ([], [])
    with pytest.raises(NotReplayable) as refused:
        await dl.replay(returned.ref, who="bob", reason="once more")
    assert refused.value.code == "replay_limit"
    await asyncio.sleep(1.5)
    page = await dl.list_records(DeadLetterFilter(topic=bench.topic))
    assert len(page.records) == 2  # it came back once, and stays there
    assert bench.handled == []

    discarded = await dl.discard(returned.ref, who="carol", reason="customer refunded by hand")
    assert discarded.state == "discarded"
    with pytest.raises(NotReplayable) as twice:
        await dl.discard(returned.ref, who="carol", reason="again")
    assert twice.value.code == "already_discarded"
    shown = await dl.get(returned.ref)
    assert shown.disposition is not None
    assert (shown.disposition.operator, shown.disposition.reason) == (
        "carol",
        "customer refunded by hand",
    )
    [summary] = await dl.summary()
    assert (summary.records, summary.replayed, summary.discarded, summary.unreplayed) == (
        2,
        1,
        1,
        0,
    )
    rows = await audit(orchestrator_sessions, "dlq:")
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("bob", "dlq_replay", "done"),
        ("bob", "dlq_replay", "refused"),
        ("carol", "dlq_discard", "done"),
        ("carol", "dlq_discard", "refused"),
    ]
    assert rows[2][3] == "customer refunded by hand"


async def test_listing_filters_and_pages_by_offset(bench: Bench) -> None:
    dl = bench.dead_letters()
    bench.broken.update({"a", "b"})
    for name in ("a", "b", "a"):
        await bench.producer.publish(
            bench.topic, Envelope(payload=DoThing(name=name, amount=1), saga_id=uuid.uuid4())
        )
    records = await bench.records(dl, 3)
    offsets = [r.offset for r in records]
    assert offsets == sorted(offsets)
    only_a = await dl.list_records(DeadLetterFilter(topic=bench.topic, reason="product a "))
    assert [r.offset for r in only_a.records] == [offsets[0], offsets[2]]
    ranged = await dl.list_records(
        DeadLetterFilter(topic=bench.topic, min_offset=offsets[1], max_offset=offsets[1])
    )
    assert [r.offset for r in ranged.records] == [offsets[1]]
    seen, cursor = [], None
    while True:
        page = await dl.list_records(DeadLetterFilter(topic=bench.topic), limit=2, cursor=cursor)
        seen += [r.offset for r in page.records]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == offsets
    with pytest.raises(LookupError):
        await dl.list_records(DeadLetterFilter(topic="not-a-topic"))
    with pytest.raises(ValueError):
        await dl.list_records(DeadLetterFilter(), cursor="nope")


@pytest_asyncio.fixture
async def admin(
    kafka_bootstrap, infra, orchestrator_sessions
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:  # type: ignore[no-untyped-def]
    prefix = unique_name("dlqapi") + "."
    topic = prefix + "payment.replies.dlq"
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    settings = Settings(
        database_url=infra.database_url("orchestrator"),
        redis_url=infra.redis_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=prefix,
    )
    service = bootstrap(settings)
    await service.producer.start()
    try:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, topic
    finally:
        await service.producer.stop()
        await service.database.close()


async def test_admin_routes_list_show_discard_and_replay(admin, orchestrator_sessions) -> None:  # type: ignore[no-untyped-def]
    api, topic = admin
    producer = api._transport.app.state.api.dead_letters._producer  # type: ignore[attr-defined]
    for i in range(2):
        await producer.send_raw(
            topic,
            key=b"k",
            value=b"\x00not json",
            headers=[
                ("message-type", b"PaymentProcessed"),
                (DLQ.ERROR_CODE, b"undecodable"),
                (DLQ.REASON, f"bad bytes {i}".encode()),
                (DLQ.ORIGINAL_TOPIC, topic.removesuffix(".dlq").encode()),
            ],
        )
    assert (await api.get("/admin/dlq")).status_code == 401
    summary = (await api.get("/admin/dlq", headers=TOKEN)).json()
    [mine] = [t for t in summary["topics"] if t["topic"] == topic]
    assert (mine["records"], mine["unreplayed"]) == (2, 2)
    assert summary["unreplayed"] == 2

    page = (await api.get(f"/admin/dlq/{topic}", params={"limit": 1}, headers=TOKEN)).json()
    [first] = page["records"]
    assert first["reason"] == "bad bytes 0"
    assert page["next_cursor"]
    rest = await api.get(
        f"/admin/dlq/{topic.removesuffix('.dlq')}",
        params={"cursor": page["next_cursor"]},
        headers=TOKEN,
    )
    assert [r["reason"] for r in rest.json()["records"]] == ["bad bytes 1"]
    one = (await api.get(f"/admin/dlq/{first['ref']}", headers=TOKEN)).json()
    assert one["value"].endswith("not json")
    assert one["headers"][DLQ.ERROR_CODE] == "undecodable"
    missing = await api.get(f"/admin/dlq/{topic}/0/999", headers=TOKEN)
    assert missing.status_code == 404
    assert (await api.get("/admin/dlq/nope.dlq", headers=TOKEN)).status_code == 404

    discarded = await api.post(
        f"/admin/dlq/{first['ref']}/discard", json={"reason": "garbage"}, headers=TOKEN
    )
    assert discarded.status_code == 200, discarded.text
    assert discarded.json()["disposition"]["operator"] == "alice"
    replay_discarded = await api.post(
        "/admin/dlq/replay",
        json={"record": {"topic": topic, "partition": 0, "offset": first["offset"]}},
        headers=TOKEN,
    )
    assert replay_discarded.status_code == 409
    assert replay_discarded.json()["error"] == "already_discarded"
    both = await api.post("/admin/dlq/replay", json={}, headers=TOKEN)
    assert both.status_code == 422
    replayed = await api.post(
        "/admin/dlq/replay",
        json={"filter": {"topic": topic, "reason": "bad bytes"}, "reason": "retry all"},
        headers=TOKEN,
    )
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert [r["ref"] for r in body["replayed"]] == [f"{topic}/0/{first['offset'] + 1}"]
    assert body["replayed"][0]["replayed_to"].startswith(topic.removesuffix(".dlq") + "/")
    summary = (await api.get("/admin/dlq", headers=TOKEN)).json()
    [mine] = [t for t in summary["topics"] if t["topic"] == topic]
    assert (mine["replayed"], mine["discarded"], mine["unreplayed"]) == (1, 1, 0)
    rows = await audit(orchestrator_sessions, f"dlq:{topic}")
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("alice", "dlq_discard", "done"),
        ("alice", "dlq_replay", "refused"),
        ("alice", "dlq_replay", "done"),
    ]
    spec = (await api.get("/openapi.json")).json()
    assert "/admin/dlq/replay" in spec["paths"]
    assert "DeadLetterDetail" in spec["components"]["schemas"]


async def _true(value: object) -> bool:
    return bool(value)
