"""VoidOrderConfirmation: the compensation of a notification step that timed out. The saga learns
whether the email went out (AlreadySent: it completes) or not (Voided: it compensates), and a
voided order is never sent afterwards, whatever send command comes late."""

import asyncio
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest

from notification.domain.confirmation import message_id_for
from sagakit.contracts import (
    REGISTRY,
    NotificationFailed,
    OrderConfirmationAlreadySent,
    OrderConfirmationSent,
    OrderConfirmationVoided,
)
from sagakit.messaging.envelope import utcnow
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration

VOID_STEP = "send_notification:compensate"


def unique(local_part: str) -> str:
    return f"{local_part}-{uuid.uuid4().hex[:8]}@example.com"


def voided_failure(reply: object, order_id: uuid.UUID) -> bool:
    return (
        isinstance(reply, NotificationFailed)
        and reply.order_id == order_id
        and reply.reason == "VOIDED"
        and "voided" in reply.detail
    )


async def test_a_void_before_any_send_records_voided_and_replies_voided(kit) -> None:
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    void = kit.void(command)

    assert await kit.deliver(kit.handlers(), void)

    [(reply, headers)] = await kit.replies()
    assert reply == OrderConfirmationVoided(order_id=order_id)
    # Matched by the orchestrator to the compensation it sent.
    assert headers["causation-id"] == str(void.message_id)
    assert headers["saga-id"] == str(command.saga_id)
    assert headers["step"] == VOID_STEP
    row = await kit.notification(order_id)
    assert (row.status, row.email, row.saga_id, row.attempts, row.reason) == (
        "voided",
        None,  # the void carries no address: none was ever known
        command.saga_id,
        0,
        "VOIDED",
    )
    assert "before any send" in row.detail


@pytest.mark.parametrize(
    "deadline_in_s", [None, 3600, -1], ids=["no-deadline", "in-time", "past-deadline"]
)
async def test_a_send_after_the_void_never_sends_and_replies_voided(
    kit, faulty_smtp, deadline_in_s
) -> None:
    # A late, re-sent or redelivered SendOrderConfirmation: whatever its deadline, nothing goes out.
    handlers = kit.handlers(kit.mailer(port=faulty_smtp.port))
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    assert await kit.deliver(handlers, kit.void(command))
    voided_row = await kit.notification(order_id)

    deadline = None if deadline_in_s is None else utcnow() + timedelta(seconds=deadline_in_s)
    assert await kit.deliver(handlers, kit.resent(command, deadline=deadline))

    assert faulty_smtp.rcpt_attempts == 0  # the server was never asked
    [_, (reply, headers)] = await kit.replies()
    assert voided_failure(reply, order_id)
    assert reply.detail == voided_row.detail
    assert headers["step"] == "send_notification"
    row = await kit.notification(order_id)
    assert (row.status, row.attempts, row.reason, row.detail) == (
        "voided",
        0,
        "VOIDED",
        voided_row.detail,
    )


async def test_a_void_after_the_send_replies_already_sent_with_the_same_message_id(kit) -> None:
    handlers = kit.handlers()
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    assert await kit.deliver(handlers, command)
    before = await kit.notification(order_id)

    void = kit.void(command)
    assert await kit.deliver(handlers, void)
    assert await kit.deliver(handlers, kit.resent(void))  # the retry worker's re-send

    sent, already, again = await kit.replies()
    assert isinstance(sent[0], OrderConfirmationSent)
    assert already[0] == OrderConfirmationAlreadySent(
        order_id=order_id, smtp_message_id=sent[0].smtp_message_id
    )
    assert already[1]["step"] == VOID_STEP
    assert already[1]["causation-id"] == str(void.message_id)
    assert again[0] == already[0]
    assert len(kit.delivered(message_id_for(order_id))) == 1
    row = await kit.notification(order_id)
    assert (row.status, row.sent_at, row.attempts) == ("sent", before.sent_at, 1)


@pytest.mark.parametrize(
    ("local_part", "deadline_in_s", "previous"),
    [("ada", -1, "expired (EXPIRED)"), ("x+reject", None, "rejected (SMTP_REJECTED)")],
    ids=["expired", "rejected"],
)
async def test_a_void_after_a_failed_send_turns_voided(
    kit, faulty_smtp, local_part, deadline_in_s, previous
) -> None:
    handlers = kit.handlers()
    deadline = None if deadline_in_s is None else utcnow() + timedelta(seconds=deadline_in_s)
    command = kit.command(unique(local_part), deadline=deadline)
    order_id = command.payload.order_id
    assert await kit.deliver(handlers, command)
    [(failed, _)] = await kit.replies()
    assert isinstance(failed, NotificationFailed)

    assert await kit.deliver(handlers, kit.void(command))

    assert [r for r, _ in await kit.replies()][1:] == [OrderConfirmationVoided(order_id=order_id)]
    row = await kit.notification(order_id)
    assert (row.status, row.reason, row.email) == ("voided", "VOIDED", command.payload.email)
    assert previous in row.detail  # the earlier outcome is kept in the record

    # A send re-sent now, with a server that would accept it, is refused without asking it.
    again = kit.resent(command, deadline=None)
    assert await kit.deliver(kit.handlers(kit.mailer(port=faulty_smtp.port)), again)
    assert faulty_smtp.rcpt_attempts == 0
    assert voided_failure((await kit.replies())[-1][0], order_id)
    assert kit.delivered(message_id_for(order_id)) == []


async def test_a_void_resent_with_new_message_ids_replies_the_same_and_changes_nothing(
    kit,
) -> None:
    handlers = kit.handlers()
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    void = kit.void(command)
    assert await kit.deliver(handlers, void)
    first = await kit.notification(order_id)

    assert not await kit.deliver(handlers, void)  # redelivery: an inbox hit, no reply
    resends = [kit.resent(void), kit.resent(void)]
    for resend in resends:
        assert await kit.deliver(handlers, resend)

    replies = await kit.replies()
    assert [r for r, _ in replies] == [OrderConfirmationVoided(order_id=order_id)] * 3
    assert [h["causation-id"] for _, h in replies] == [str(e.message_id) for e in [void, *resends]]
    row = await kit.notification(order_id)
    assert (row.status, row.reason, row.detail, row.saga_id, row.created_at) == (
        first.status,
        first.reason,
        first.detail,
        first.saga_id,
        first.created_at,
    )


async def test_a_void_after_a_crashed_send_is_voided_and_the_redelivered_send_sends_nothing(
    kit,
) -> None:
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    with pytest.raises(kit.Crash):
        await kit.deliver(kit.handlers(kit.crashing_mailer()), command)
    assert (await kit.notification(order_id)).status == "sending"  # claimed, no outcome

    handlers = kit.handlers()
    assert await kit.deliver(handlers, kit.void(command))
    row = await kit.notification(order_id)
    assert (row.status, row.attempts) == ("voided", 1)
    assert "when it was sending" in row.detail

    # The crashed record comes back (its inbox row was never committed): it must not send.
    assert await kit.deliver(handlers, command)

    assert kit.delivered(message_id_for(order_id)) == []
    void_reply, send_reply = (r for r, _ in await kit.replies())
    assert void_reply == OrderConfirmationVoided(order_id=order_id)
    assert voided_failure(send_reply, order_id)
    assert (await kit.notification(order_id)).status == "voided"


async def test_the_known_window_a_crash_after_smtp_accepted_before_the_commit(kit) -> None:
    # The one case where an email exists for a voided order: the server accepted the message,
    # the process died before recording it, and the void came before any redelivery. Pinned
    # here so that a change to it is a decision: one email, no second one afterwards.
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    handlers = kit.handlers()

    def crash() -> None:
        raise kit.Crash("killed before commit")

    with pytest.raises(kit.Crash):
        await kit.deliver(handlers, command, before_commit=crash)
    assert len(kit.delivered(message_id_for(order_id))) == 1

    restarted = kit.handlers()  # the process died: the new one cannot know what was accepted
    assert await kit.deliver(restarted, kit.void(command))
    assert await kit.deliver(restarted, command)  # the crashed record, redelivered

    assert len(kit.delivered(message_id_for(order_id))) == 1
    void_reply, send_reply = (r for r, _ in await kit.replies())
    assert void_reply == OrderConfirmationVoided(order_id=order_id)
    assert voided_failure(send_reply, order_id)


async def test_a_void_after_a_failed_commit_in_the_same_process_knows_the_email_went_out(
    kit,
) -> None:
    # Not a crash: the database went away after the server accepted the message. The process
    # remembers the accepted send, so the void answers "already sent" and the saga completes.
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    handlers = kit.handlers()

    def database_gone() -> None:
        raise kit.Crash("connection lost before the commit")

    with pytest.raises(kit.Crash):
        await kit.deliver(handlers, command, before_commit=database_gone)
    assert await kit.deliver(handlers, kit.void(command))

    assert len(kit.delivered(message_id_for(order_id))) == 1
    [(reply, _)] = await kit.replies()
    assert reply == OrderConfirmationAlreadySent(
        order_id=order_id, smtp_message_id=message_id_for(order_id)
    )
    assert (await kit.notification(order_id)).status == "sent"


class BlockingMailer:
    """Accepts every message, but only once ``release`` is set: a send in progress."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage, *, not_after: datetime | None = None) -> None:
        self.started.set()
        await self.release.wait()
        self.sent.append(message)


async def test_a_void_waits_for_a_send_in_progress_and_replies_already_sent(kit) -> None:
    # A send holds the row's lock while talking to the server (say, another replica during a
    # rebalance); the void waits for its outcome instead of voiding an email being sent.
    mailer = BlockingMailer()
    handlers = kit.handlers(mailer)
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id

    sending = asyncio.create_task(kit.deliver(handlers, command))
    await asyncio.wait_for(mailer.started.wait(), timeout=10)
    voiding = asyncio.create_task(kit.deliver(handlers, kit.void(command)))

    await eventually(kit.waiting_for_row_lock, what="the void waiting for the row lock")
    mailer.release.set()
    assert list(await asyncio.gather(sending, voiding)) == [True, True]

    assert len(mailer.sent) == 1
    sent, already = (r for r, _ in await kit.replies())
    assert isinstance(sent, OrderConfirmationSent)
    assert already == OrderConfirmationAlreadySent(
        order_id=order_id, smtp_message_id=sent.smtp_message_id
    )
    assert (await kit.notification(order_id)).status == "sent"


async def test_through_the_consumer_send_then_void_of_one_saga_sends_once_and_says_so(
    kit, kafka_bootstrap, new_topic
) -> None:
    # The chaos run's case: the email went out in time, its reply was late, the void followed on
    # the same key. Several partitions: the key alone keeps the two in order.
    topic = await new_topic(partitions=3)
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    void = kit.void(command)
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap,
            topic,
            {},
            kit.database,
            producer,
            registry=REGISTRY,
            batch_handlers=kit.batch_handlers(),
        ) as consumer,
    ):
        await producer.publish(topic, command)
        await producer.publish(topic, void)

        async def both_consumed() -> bool:
            return consumer.processed >= 2

        await eventually(both_consumed, what="the send and the void consumed")

    assert len(kit.delivered(message_id_for(order_id))) == 1
    replies = await kit.replies()
    assert [(type(r), h["causation-id"]) for r, h in replies] == [
        (OrderConfirmationSent, str(command.message_id)),
        (OrderConfirmationAlreadySent, str(void.message_id)),
    ]
    assert replies[1][0].smtp_message_id == replies[0][0].smtp_message_id
    assert (await kit.notification(order_id)).status == "sent"
