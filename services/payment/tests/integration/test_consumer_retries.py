"""A gateway timeout through the real consumer, outbox relay and Kafka: the consumer retries the
same record, the gateway sees the same idempotency key every time, the customer is charged once,
and exactly one reply (never a decline) reaches the replies topic."""

import pytest

from payment.domain.gateway import PaymentGateway
from payment.service_layer.handlers import make_handlers
from sagakit.contracts import REGISTRY, PaymentProcessed
from sagakit.messaging.envelope import Envelope
from sagakit.testing.kafka import read_topic, unique_name
from sagakit.testing.runners import running_consumer, running_producer, running_relay
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


class RecordingGateway:
    """Passes calls through, noting the idempotency key of each charge attempt."""

    def __init__(self, inner: PaymentGateway) -> None:
        self.inner = inner
        self.charge_keys: list[str] = []

    async def charge(self, **kwargs):
        self.charge_keys.append(kwargs["idempotency_key"])
        return await self.inner.charge(**kwargs)

    async def refund(self, **kwargs):
        return await self.inner.refund(**kwargs)


@pytest.mark.parametrize("answer_lost", [False, True], ids=["timeout-before", "answer-lost"])
async def test_a_gateway_timeout_is_retried_with_the_same_key_and_never_declined(
    kafka_bootstrap,
    new_topic,
    payment_database,
    payment_db_url,
    harness,
    gateway,
    saga,
    answer_lost,
) -> None:
    commands, replies = await new_topic("payment-commands"), await new_topic("payment-replies")
    gateway.fail_next, gateway.fail_after_record = 2, answer_lost
    recording = RecordingGateway(gateway)
    command = saga.process("pm_card_visa", amount=1999)
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap,
            commands,
            make_handlers(reply_topic=replies, gateway=recording),
            payment_database,
            producer,
            registry=REGISTRY,
        ) as consumer,
        running_relay(payment_db_url, producer, name=unique_name("payment-relay")),
    ):
        await producer.publish(commands, command)
        await eventually(lambda: _at_least(consumer.processed, 1), what="the command handled")
        [record] = await read_topic(kafka_bootstrap, replies, expected=1)
        late = await read_topic(kafka_bootstrap, replies, expected=2, timeout=2)

    assert len(late) == 1  # one reply, not one per attempt
    reply = Envelope.from_record(record.headers, record.value, REGISTRY)
    assert isinstance(reply.payload, PaymentProcessed)
    assert reply.causation_id == command.message_id
    assert recording.charge_keys == [f"{saga.saga_id}:process_payment"] * 3  # 2 timeouts, then ok
    [charge] = await harness.gateway_charges()
    assert reply.payload.payment_id == charge.payment_id
    assert await read_topic(kafka_bootstrap, f"{commands}.dlq", expected=1, timeout=1) == []


async def _at_least(value: int, wanted: int) -> bool:
    return value >= wanted
