"""SendOrderConfirmation past the saga's deadline: once the orchestrator has stopped waiting (and
compensated, cancelling the order), no "order confirmed" email may go out, ever."""

import asyncio
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from notification.adapters.orm import Notification
from notification.domain.confirmation import message_id_for
from sagakit.contracts import REGISTRY, NotificationFailed, OrderConfirmationSent
from sagakit.errors import GatewayUnavailable
from sagakit.messaging.envelope import utcnow
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration

MARGIN_S = 5.0  # the handlers' send margin in these tests (conftest SMTP_TIMEOUT_S)


def unique(local_part: str) -> str:
    return f"{local_part}-{uuid.uuid4().hex[:8]}@example.com"


def expired_reply(reply: object, order_id: uuid.UUID) -> bool:
    return (
        isinstance(reply, NotificationFailed)
        and reply.order_id == order_id
        and reply.reason == "EXPIRED"
        and "not sent" in reply.detail
    )


async def test_a_command_past_its_deadline_sends_nothing_and_replies_expired(
    kit, faulty_smtp
) -> None:
    deadline = utcnow() - timedelta(seconds=1)
    command = kit.command(unique("ada"), deadline=deadline)
    order_id = command.payload.order_id

    assert await kit.deliver(kit.handlers(kit.mailer(port=faulty_smtp.port)), command)

    assert faulty_smtp.rcpt_attempts == 0  # the server was never asked
    [(reply, headers)] = await kit.replies()
    assert expired_reply(reply, order_id)
    assert deadline.isoformat() in reply.detail
    assert headers["causation-id"] == str(command.message_id)
    assert headers["step"] == "send_notification"
    row = await kit.notification(order_id)
    # Nothing was claimed: no send ever started for this order.
    assert (row.status, row.attempts, row.reason, row.detail) == (
        "expired",
        0,
        "EXPIRED",
        reply.detail,
    )


async def test_a_deadline_closer_than_the_smtp_timeout_is_already_too_late(kit) -> None:
    # A send that starts now could still be running at the deadline: it does not start.
    command = kit.command(unique("ada"), deadline=utcnow() + timedelta(seconds=MARGIN_S - 2))

    assert await kit.deliver(kit.handlers(), command)

    assert kit.delivered(message_id_for(command.payload.order_id)) == []
    [(reply, _)] = await kit.replies()
    assert expired_reply(reply, command.payload.order_id)
    assert (await kit.notification(command.payload.order_id)).status == "expired"


@pytest.mark.parametrize("deadline_in_s", [None, MARGIN_S + 60], ids=["no-deadline", "future"])
async def test_a_command_with_a_future_deadline_or_none_is_sent(kit, deadline_in_s) -> None:
    deadline = None if deadline_in_s is None else utcnow() + timedelta(seconds=deadline_in_s)
    command = kit.command(unique("ada"), deadline=deadline)
    order_id = command.payload.order_id

    assert await kit.deliver(kit.handlers(), command)

    assert len(kit.delivered(message_id_for(order_id))) == 1
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent]
    assert (await kit.notification(order_id)).status == "sent"


async def test_an_expired_order_stays_expired_for_resent_commands_with_or_without_deadline(
    kit, faulty_smtp
) -> None:
    command = kit.command(unique("ada"), deadline=utcnow() - timedelta(seconds=1))
    handlers = kit.handlers(kit.mailer(port=faulty_smtp.port))
    assert await kit.deliver(handlers, command)

    assert not await kit.deliver(handlers, command)  # redelivery: an inbox hit
    assert await kit.deliver(handlers, kit.resent(command, deadline=None))
    assert await kit.deliver(handlers, kit.resent(command, deadline=utcnow() + timedelta(hours=1)))

    assert faulty_smtp.rcpt_attempts == 0
    replies = [r for r, _ in await kit.replies()]
    assert len(replies) == 3
    assert all(r == replies[0] for r in replies)  # the recorded outcome, replayed
    assert expired_reply(replies[0], command.payload.order_id)
    assert (await kit.notification(command.payload.order_id)).status == "expired"


async def test_a_sent_or_rejected_order_replies_its_outcome_even_past_the_deadline(
    kit, faulty_smtp
) -> None:
    handlers = kit.handlers()
    sent = kit.command(unique("ada"))
    rejected = kit.command(unique("x+reject"))
    assert await kit.deliver(handlers, sent)
    assert await kit.deliver(handlers, rejected)
    late = {"deadline": utcnow() - timedelta(minutes=1)}

    assert await kit.deliver(handlers, kit.resent(sent, **late))
    assert await kit.deliver(handlers, kit.resent(rejected, **late))

    first_sent, first_rejected, again_sent, again_rejected = [r for r, _ in await kit.replies()]
    assert isinstance(first_sent, OrderConfirmationSent)
    assert again_sent == first_sent
    assert isinstance(first_rejected, NotificationFailed)
    assert first_rejected.reason == "SMTP_REJECTED"
    assert again_rejected == first_rejected
    assert (await kit.notification(sent.payload.order_id)).status == "sent"
    assert (await kit.notification(rejected.payload.order_id)).status == "rejected"
    assert len(kit.delivered(message_id_for(sent.payload.order_id))) == 1


async def test_smtp_down_until_after_the_deadline_then_up_sends_nothing_and_replies_expired(
    kit, faulty_smtp, manual_clock
) -> None:
    handlers = kit.handlers(
        kit.mailer(port=faulty_smtp.port, clock=manual_clock), clock=manual_clock
    )
    command = kit.command(unique("ada"), deadline=manual_clock.now + timedelta(seconds=60))
    order_id = command.payload.order_id
    await faulty_smtp.stop()

    with pytest.raises(GatewayUnavailable):
        await kit.deliver(handlers, command)
    assert (await kit.notification(order_id)).status == "sending"
    assert await kit.replies() == []

    manual_clock.advance(61)  # the outage outlasted the deadline; the saga has compensated
    await faulty_smtp.start()
    assert await kit.deliver(handlers, command)  # the consumer's retry of the same record

    assert faulty_smtp.rcpt_attempts == 0
    assert faulty_smtp.messages() == []
    [(reply, headers)] = await kit.replies()
    assert expired_reply(reply, order_id)
    assert headers["causation-id"] == str(command.message_id)
    row = await kit.notification(order_id)
    assert (row.status, row.attempts) == ("expired", 1)


async def test_the_window_closing_during_the_smtp_retries_stops_them_and_replies_expired(
    kit, faulty_smtp, manual_clock
) -> None:
    # The server answers 451 forever; time (for the handler and the mailer) passes the last
    # moment a send may start as soon as the server has been asked once.
    faulty_smtp.failures = 1_000
    start: datetime = manual_clock.now

    def clock() -> datetime:
        return start + timedelta(seconds=30 if faulty_smtp.rcpt_attempts else 0)

    handlers = kit.handlers(
        kit.mailer(port=faulty_smtp.port, max_attempts=5, clock=clock), clock=clock
    )
    command = kit.command(unique("ada"), deadline=start + timedelta(seconds=MARGIN_S + 10))

    assert await kit.deliver(handlers, command)  # no GatewayUnavailable: an outcome

    assert faulty_smtp.rcpt_attempts == 1  # attempts 2 to 5 never started
    [(reply, _)] = await kit.replies()
    assert expired_reply(reply, command.payload.order_id)
    row = await kit.notification(command.payload.order_id)
    assert (row.status, row.attempts) == ("expired", 1)


async def test_through_the_consumer_an_outage_past_the_deadline_ends_in_one_expired_reply(
    kit, faulty_smtp, kafka_bootstrap, new_topic
) -> None:
    # Real time: a short margin and a deadline a moment away, the server down all along.
    margin_s = 0.5
    topic = await new_topic(partitions=1)
    handlers = kit.batch_handlers(
        kit.mailer(port=faulty_smtp.port, max_attempts=2, timeout_s=margin_s),
        send_margin_s=margin_s,
    )
    deadline = utcnow() + timedelta(seconds=margin_s + 1.5)
    command = kit.command(unique("ada"), deadline=deadline)
    order_id = command.payload.order_id
    await faulty_smtp.stop()

    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap,
            topic,
            {},
            kit.database,
            producer,
            registry=REGISTRY,
            batch_handlers=handlers,
        ) as consumer,
    ):
        await producer.publish(topic, command)

        async def retried() -> bool:
            row = await kit.notification(order_id)
            return row is not None and row.attempts >= 2

        await eventually(retried, what="the consumer retrying while the server is down")
        assert await kit.replies() == []  # an outage is not a failure, until the deadline

        async def replied() -> bool:
            return bool(await kit.replies())

        await eventually(replied, timeout=15, what="the EXPIRED reply after the deadline")
        assert utcnow() >= deadline - timedelta(seconds=margin_s)
        assert consumer.processed == 1

        await faulty_smtp.start()  # the server is back; the order is settled
        await producer.publish(topic, kit.resent(command, deadline=None))

        async def both_replied() -> bool:
            return len(await kit.replies()) == 2

        await eventually(both_replied, what="the re-sent command's reply")

    assert faulty_smtp.rcpt_attempts == 0
    assert faulty_smtp.messages() == []
    replies = [r for r, _ in await kit.replies()]
    assert replies[0] == replies[1]
    assert expired_reply(replies[0], order_id)
    assert (await kit.notification(order_id)).status == "expired"


async def test_a_late_command_racing_a_send_of_the_same_order_never_contradicts_it(kit) -> None:
    # One delivery in time, a re-sent one past the deadline, at once: whichever locks the row
    # first decides, and both replies agree with what happened to the customer.
    handlers = kit.handlers()
    command = kit.command(unique("ada"), deadline=utcnow() + timedelta(minutes=5))
    late = kit.resent(command, deadline=utcnow() - timedelta(seconds=1))

    assert list(
        await asyncio.gather(kit.deliver(handlers, command), kit.deliver(handlers, late))
    ) == [
        True,
        True,
    ]

    mails = kit.delivered(message_id_for(command.payload.order_id))
    replies = [r for r, _ in await kit.replies()]
    status = (await kit.notification(command.payload.order_id)).status
    assert len(replies) == 2
    if mails:
        assert (len(mails), status) == (1, "sent")
        assert all(isinstance(r, OrderConfirmationSent) for r in replies)
    else:
        assert status == "expired"
        assert all(expired_reply(r, command.payload.order_id) for r in replies)


class CountingMailer:
    """Accepts everything and ignores ``not_after``: only the handler's own checks stop it."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage, *, not_after: datetime | None = None) -> None:
        self.sent.append(message)


async def test_the_window_is_checked_again_after_waiting_for_the_row_lock(
    kit, manual_clock
) -> None:
    # Another delivery of the order holds the row mid-send, then dies without an outcome; the
    # deadline passes while this delivery waits for it.
    command = kit.command(unique("ada"), deadline=manual_clock.now + timedelta(seconds=60))
    order_id = command.payload.order_id
    mailer = CountingMailer()
    async with kit.sessions() as session:
        session.add(
            Notification(
                order_id=order_id,
                email=command.payload.email,
                smtp_message_id=message_id_for(order_id),
                status="sending",
                attempts=1,
            )
        )
        await session.commit()

    async with kit.sessions() as holder:
        await holder.execute(
            select(Notification).where(Notification.order_id == order_id).with_for_update()
        )
        delivery = asyncio.create_task(
            kit.deliver(kit.handlers(mailer, clock=manual_clock), command)
        )

        await eventually(kit.waiting_for_row_lock, what="the delivery waiting for the row lock")
        manual_clock.advance(61)
        await holder.rollback()  # the other delivery dies: no outcome recorded

    assert await delivery
    assert mailer.sent == []
    [(reply, _)] = await kit.replies()
    assert expired_reply(reply, order_id)
    assert (await kit.notification(order_id)).status == "expired"
