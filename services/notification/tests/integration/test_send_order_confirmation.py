"""SendOrderConfirmation: at most one email per order, under redelivery, re-sent commands,
outages and crashes; permanent rejections are failure replies."""

import asyncio
import uuid
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from notification.adapters.orm import InboxMessage
from notification.domain.confirmation import message_id_for
from sagakit.contracts import REGISTRY, NotificationFailed, OrderConfirmationSent
from sagakit.errors import GatewayUnavailable
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def unique(local_part: str) -> str:
    """A fresh address: the local SMTP server keeps per-address state (tempfail counts)."""
    return f"{local_part}-{uuid.uuid4().hex[:8]}@example.com"


def plain_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_confirmation_is_delivered_with_its_lines_total_and_order_id(kit) -> None:
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id

    assert await kit.deliver(kit.handlers(), command)

    [mail] = kit.delivered(message_id_for(order_id))
    body = plain_body(mail)
    assert str(order_id) in body
    assert [line.split() for line in body.splitlines() if line.startswith(("sku-", "Total"))] == [
        ["sku-mug", "2", "USD", "19.99", "USD", "39.98"],
        ["sku-tee", "1", "USD", "25.00", "USD", "25.00"],
        ["Total", "USD", "64.98"],
    ]
    assert mail["X-Envelope-To"] == command.payload.email
    assert mail["Subject"] == f"Your order {order_id.hex[:8].upper()} is confirmed"

    [(reply, headers)] = await kit.replies()
    assert reply == OrderConfirmationSent(
        order_id=order_id, smtp_message_id=f"<order-{order_id}@saga-shop.local>"
    )
    # Matched by the orchestrator on saga, step and the command's message id.
    assert headers["causation-id"] == str(command.message_id)
    assert headers["saga-id"] == str(command.saga_id)
    assert headers["step"] == "send_notification"

    row = await kit.notification(order_id)
    assert (row.status, row.attempts, row.saga_id) == ("sent", 1, command.saga_id)
    assert row.sent_at is not None


async def test_a_resent_command_with_a_new_message_id_sends_nothing_and_replies_the_same(
    kit,
) -> None:
    handlers = kit.handlers()
    command = kit.command(unique("ada"))
    again = kit.resent(command)
    assert again.message_id != command.message_id

    assert await kit.deliver(handlers, command)
    assert await kit.deliver(handlers, again)  # not an inbox hit: a new message id

    assert len(kit.delivered(message_id_for(command.payload.order_id))) == 1
    replies = await kit.replies()
    assert [r for r, _ in replies] == [replies[0][0], replies[0][0]]
    assert isinstance(replies[0][0], OrderConfirmationSent)
    assert [h["causation-id"] for _, h in replies] == [
        str(command.message_id),
        str(again.message_id),
    ]
    row = await kit.notification(command.payload.order_id)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_a_duplicate_delivery_through_the_consumer_sends_one_email(
    kit, kafka_bootstrap, new_topic
) -> None:
    topic = await new_topic(partitions=1)
    command = kit.command(unique("ada"))
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
        await producer.publish(topic, command)  # the same record again: same message id

        async def both_consumed() -> bool:
            return consumer.processed >= 2

        await eventually(both_consumed, what="both records consumed")

    assert len(kit.delivered(message_id_for(command.payload.order_id))) == 1
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent]
    async with kit.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboxMessage)) == 1


async def test_a_permanent_rejection_replies_smtp_rejected_and_a_resend_does_not_try_again(
    kit, faulty_smtp
) -> None:
    command = kit.command(unique("x+reject"))
    order_id = command.payload.order_id

    assert await kit.deliver(kit.handlers(), command)

    [(reply, _)] = await kit.replies()
    assert reply == NotificationFailed(
        order_id=order_id,
        reason="SMTP_REJECTED",
        detail="550 5.1.1 Mailbox unavailable (test rule: reject)",
    )
    row = await kit.notification(order_id)
    assert (row.status, row.reason, row.detail) == ("rejected", reply.reason, reply.detail)
    assert kit.delivered(message_id_for(order_id)) == []

    # Re-sent: answered from the record. A server that would accept it is never even asked.
    assert await kit.deliver(kit.handlers(kit.mailer(port=faulty_smtp.port)), kit.resent(command))
    assert faulty_smtp.rcpt_attempts == 0
    assert [r for r, _ in await kit.replies()] == [reply, reply]


async def test_an_address_the_header_cannot_carry_is_rejected_without_contacting_the_server(
    kit, faulty_smtp
) -> None:
    command = kit.command("a,b@example.com")  # passes the contract's pattern

    assert await kit.deliver(kit.handlers(kit.mailer(port=faulty_smtp.port)), command)

    [(reply, _)] = await kit.replies()
    assert isinstance(reply, NotificationFailed)
    assert reply.reason == "INVALID_RECIPIENT"
    assert faulty_smtp.rcpt_attempts == 0
    assert (await kit.notification(command.payload.order_id)).status == "rejected"


async def test_tempfail_is_retried_and_delivered_once(kit) -> None:
    command = kit.command(unique("y+tempfail"))  # 451 twice, then accepted

    assert await kit.deliver(kit.handlers(kit.mailer(max_attempts=3)), command)

    assert len(kit.delivered(message_id_for(command.payload.order_id))) == 1
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent]


async def test_a_server_that_is_down_fails_the_delivery_and_a_later_one_sends(
    kit, faulty_smtp
) -> None:
    handlers = kit.handlers(kit.mailer(port=faulty_smtp.port, max_attempts=2))
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    await faulty_smtp.stop()

    with pytest.raises(GatewayUnavailable):
        await kit.deliver(handlers, command)

    # Nothing was decided: no reply, no inbox row (so the record is retried), still `sending`.
    assert await kit.replies() == []
    row = await kit.notification(order_id)
    assert (row.status, row.reason) == ("sending", None)

    await faulty_smtp.start()
    assert await kit.deliver(handlers, command)  # the consumer's retry of the same record

    assert [m["Message-ID"] for m in faulty_smtp.messages()] == [message_id_for(order_id)]
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent]
    row = await kit.notification(order_id)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_the_consumer_keeps_retrying_while_the_server_is_down_and_sends_once_it_is_back(
    kit, faulty_smtp, kafka_bootstrap, new_topic
) -> None:
    topic = await new_topic(partitions=1)
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    await faulty_smtp.stop()
    handlers = kit.batch_handlers(kit.mailer(port=faulty_smtp.port, max_attempts=2))

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

        async def retried_a_few_times() -> bool:
            row = await kit.notification(order_id)
            return row is not None and row.attempts >= 3

        await eventually(retried_a_few_times, what="the consumer retrying the record")
        assert await kit.replies() == []  # an outage is not a failure
        assert (await kit.notification(order_id)).status == "sending"

        await faulty_smtp.start()

        async def replied() -> bool:
            return bool(await kit.replies())

        await eventually(replied, what="the reply after the server came back")
        assert consumer.processed == 1

    assert len(faulty_smtp.messages()) == 1
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent]
    assert (await kit.notification(order_id)).status == "sent"


async def test_a_crash_after_the_claim_before_sending_leaves_the_order_to_the_next_delivery(
    kit,
) -> None:
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id

    with pytest.raises(kit.Crash):
        await kit.deliver(kit.handlers(kit.crashing_mailer()), command)

    # The claim survived the crash (its own transaction); the inbox row did not, so the record
    # is delivered again rather than taken as done.
    row = await kit.notification(order_id)
    assert (row.status, row.attempts) == ("sending", 1)
    assert await kit.replies() == []

    assert await kit.deliver(kit.handlers(), command)

    assert len(kit.delivered(message_id_for(order_id))) == 1
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent]
    row = await kit.notification(order_id)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_crash_after_sending_before_the_commit_sends_exactly_one_more_with_the_same_id(
    kit,
) -> None:
    # The one window SMTP leaves open: the server accepted, the outcome was not committed.
    # The next delivery sends again with the SAME Message-ID, so receivers can drop it.
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    handlers = kit.handlers()

    def crash() -> None:
        raise kit.Crash("killed before commit")

    with pytest.raises(kit.Crash):
        await kit.deliver(handlers, command, before_commit=crash)
    assert len(kit.delivered(message_id_for(order_id))) == 1
    assert await kit.replies() == []
    assert (await kit.notification(order_id)).status == "sending"

    restarted = kit.handlers()  # a new process: it cannot know the server had accepted
    assert await kit.deliver(restarted, command)
    assert await kit.deliver(restarted, kit.resent(command))  # and nothing after that

    mails = kit.delivered(message_id_for(order_id))
    assert len(mails) == 2
    assert {m["Message-ID"] for m in mails} == {message_id_for(order_id)}
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent] * 2
    assert (await kit.notification(order_id)).status == "sent"


async def test_concurrent_deliveries_of_one_order_send_one_email(kit) -> None:
    # Two commands for the same order handled at once (say, by two replicas during a
    # rebalance): the row lock makes the second wait for the first's outcome.
    handlers = kit.handlers()
    command = kit.command(unique("ada"))
    results = await asyncio.gather(
        kit.deliver(handlers, command), kit.deliver(handlers, kit.resent(command))
    )

    assert list(results) == [True, True]
    assert len(kit.delivered(message_id_for(command.payload.order_id))) == 1
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent] * 2


async def test_a_failed_commit_after_sending_is_retried_without_sending_again(kit) -> None:
    """Found by the chaos run: PostgreSQL restarted right after the server accepted the email,
    so the commit of ``sent`` failed and the consumer retried the record in the same process.
    The process remembers the accepted send: the retry records it instead of resending."""
    command = kit.command(unique("ada"))
    order_id = command.payload.order_id
    handlers = kit.handlers()

    def database_gone() -> None:
        raise kit.Crash("connection lost before the commit")

    with pytest.raises(kit.Crash):
        await kit.deliver(handlers, command, before_commit=database_gone)
    assert (await kit.notification(order_id)).status == "sending"

    assert await kit.deliver(handlers, command)  # the consumer's retry of the same record
    assert len(kit.delivered(message_id_for(order_id))) == 1
    assert [type(r) for r, _ in await kit.replies()] == [OrderConfirmationSent]
    assert (await kit.notification(order_id)).status == "sent"
