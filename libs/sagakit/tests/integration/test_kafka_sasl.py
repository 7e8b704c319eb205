"""The clients reach a broker that wants a login: the local broker's SASL_PLAINTEXT listener
(PLAIN) and its SASL_SSL one (PLAIN over TLS, a certificate of the local CA), through the
project's client factory, the producer and the consumer loop the services run; a wrong
password, or a certificate the client does not trust, is refused with one clear error, not
retried as an outage."""

import dataclasses
import uuid

import pytest
from pydantic import SecretStr

from sagakit.errors import ConfigurationError
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.kafka_clients import (
    KafkaLoginRefused,
    KafkaSecurity,
    check_login,
    kafka_admin,
)
from sagakit.messaging.producer import Producer
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.kafka import create_topics, read_topic, unique_name
from sagakit.testing.messages import DoThing
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-password-SECRET-7"


@pytest.fixture(params=["sasl_plaintext", "sasl_ssl"])
def listener(request: pytest.FixtureRequest) -> tuple[str, KafkaSecurity]:
    fixture = "kafka_sasl" if request.param == "sasl_plaintext" else "kafka_sasl_ssl"
    value: tuple[str, KafkaSecurity] = request.getfixturevalue(fixture)
    return value


async def test_produce_and_consume_through_a_listener_that_wants_a_login(
    listener: tuple[str, KafkaSecurity], database
) -> None:
    bootstrap, security = listener
    topic = unique_name("sasl")
    await create_topics(bootstrap, [topic], security=security)
    admin = kafka_admin(bootstrap, security)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()

    sent = Envelope(payload=DoThing(name="over-sasl", amount=7), saga_id=uuid.uuid4())
    received: list[Envelope[DoThing]] = []

    async def handle(envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
        received.append(envelope)

    async with (
        running_producer(bootstrap, security=security) as producer,
        running_consumer(
            bootstrap, topic, {"DoThing": handle}, database, producer, security=security
        ),
    ):
        await producer.publish(topic, sent)
        await eventually(lambda: _some(received), what="the message over SASL")  # type: ignore[arg-type]
    assert received == [sent]
    [record] = await read_topic(bootstrap, topic, expected=1, security=security)
    assert record.key == str(sent.saga_id).encode()


async def test_a_wrong_password_is_refused_with_a_clear_error(
    kafka_sasl: tuple[str, KafkaSecurity],
) -> None:
    bootstrap, security = kafka_sasl
    wrong = dataclasses.replace(security, sasl_password=SecretStr(WRONG_PASSWORD))
    producer = Producer(bootstrap, client_id="test", security=wrong, request_timeout_ms=5000)
    with pytest.raises(KafkaLoginRefused) as refused:
        await producer.start()
    message = str(refused.value)
    assert isinstance(refused.value, ConfigurationError)  # a service exits 2, no retry loop
    assert f"Kafka at {bootstrap} refused the login" in message
    assert "PLAIN as 'saga'" in message
    assert "Invalid username or password" in message
    assert WRONG_PASSWORD not in message + repr(refused.value) + repr(wrong)


async def test_a_mechanism_the_listener_does_not_enable_is_refused(
    kafka_sasl: tuple[str, KafkaSecurity],
) -> None:
    bootstrap, security = kafka_sasl
    scram = dataclasses.replace(security, sasl_mechanism="SCRAM-SHA-512")
    with pytest.raises(KafkaLoginRefused, match=r"SCRAM-SHA-512 as 'saga'.*UnsupportedSasl"):
        await check_login(bootstrap, scram)


async def test_a_broker_certificate_from_an_untrusted_ca_is_refused(
    kafka_sasl_ssl: tuple[str, KafkaSecurity],
) -> None:
    bootstrap, security = kafka_sasl_ssl
    system_cas = dataclasses.replace(security, ssl_ca_file=None)  # the local CA is not among them
    producer = Producer(bootstrap, client_id="test", security=system_cas, request_timeout_ms=5000)
    with pytest.raises(KafkaLoginRefused, match=r"CERTIFICATE_VERIFY_FAILED.*KAFKA_SSL_CA_FILE"):
        await producer.start()


async def test_the_plaintext_listener_is_no_login_check(kafka_bootstrap: str) -> None:
    # PLAINTEXT settings never probe: a broker that is down stays an outage (retried).
    await check_login(kafka_bootstrap, KafkaSecurity())


async def _some(items: list[object]) -> bool:
    return bool(items)
