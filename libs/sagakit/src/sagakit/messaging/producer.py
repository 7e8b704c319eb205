"""The producer wrapper: idempotent, acks=all, keyed by saga id.

Services never publish domain messages directly: they write the outbox and the relay publishes
through this producer. Direct sends are for the relay and for dead-lettering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import NoReturn

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from sagakit.errors import BrokerUnavailable
from sagakit.messaging.envelope import Envelope, Headers
from sagakit.messaging.kafka_clients import PLAINTEXT, KafkaSecurity, check_login, kafka_producer
from sagakit.messaging.registry import Message

log = logging.getLogger(__name__)


class Producer:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        linger_ms: int = 0,
        request_timeout_ms: int = 15_000,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._security = security
        self._config = {
            "client_id": client_id,
            "enable_idempotence": True,  # the broker drops retried duplicates; needs acks=all
            "acks": "all",
            "linger_ms": linger_ms,
            "request_timeout_ms": request_timeout_ms,
        }
        self._kafka_client: AIOKafkaProducer | None = None

    @property
    def _kafka(self) -> AIOKafkaProducer:
        if self._kafka_client is None:
            raise BrokerUnavailable("producer is not started")
        return self._kafka_client

    async def start(self) -> None:
        # aiokafka binds its client to the running loop, so it is created here, not in __init__.
        kafka = kafka_producer(self._bootstrap_servers, self._security, **self._config)
        try:
            await kafka.start()
        except KafkaError as exc:
            await kafka.stop()
            # A refused login (or certificate) raises KafkaLoginRefused: no retry will help.
            await check_login(self._bootstrap_servers, self._security)
            raise BrokerUnavailable(f"cannot start producer: {exc}") from exc
        self._kafka_client = kafka

    async def stop(self) -> None:
        if self._kafka_client is not None:
            kafka, self._kafka_client = self._kafka_client, None
            await kafka.stop()

    async def send_raw(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        """Send one record and wait for the broker's acknowledgement."""
        await self.send_many([(topic, key, value, headers)])

    async def send_located(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers
    ) -> tuple[int, int]:
        """Send one record, wait for the acknowledgement and return its (partition, offset)."""
        try:
            future = await self._kafka.send(topic, value=value, key=key, headers=headers)
            metadata = await future
        except KafkaError as exc:
            await self._failed(exc)
        return int(metadata.partition), int(metadata.offset)

    async def send_many(
        self, records: Sequence[tuple[str, bytes | None, bytes | None, Headers]]
    ) -> None:
        """Send records in order and wait until all are acknowledged (batched by the client)."""
        await (await self.enqueue(records))

    async def enqueue(
        self, records: Sequence[tuple[str, bytes | None, bytes | None, Headers]]
    ) -> asyncio.Future[None]:
        """Hand records to the client, in order, and return at once: the returned future is
        done when all are acknowledged (or fails with ``BrokerUnavailable``)."""
        try:
            futures = [
                await self._kafka.send(topic, value=value, key=key, headers=headers)
                for topic, key, value, headers in records
            ]
        except KafkaError as exc:
            await self._failed(exc)
        return asyncio.ensure_future(self._acknowledged(futures))

    async def _acknowledged(self, futures: list[asyncio.Future[object]]) -> None:
        try:
            await asyncio.gather(*futures)
        except KafkaError as exc:
            await self._failed(exc)

    async def _failed(self, exc: KafkaError) -> NoReturn:
        if not exc.retriable:
            await self._rebuild()
        raise BrokerUnavailable(f"publish failed: {exc}") from exc

    async def _rebuild(self) -> None:
        """A non-retriable error can leave the client unusable for good (say, the idempotent
        producer's state after a broker restart): replace it, so the caller's retry can work."""
        log.warning(
            "producer %s: rebuilding the Kafka client after a fatal error",
            self._config["client_id"],
        )
        old, self._kafka_client = self._kafka_client, None
        if old is not None:
            # stop() flushes what is buffered and can wait forever on a broken connection.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), timeout=5.0)
        with contextlib.suppress(BrokerUnavailable):
            await self.start()

    async def publish(self, topic: str, envelope: Envelope[Message]) -> None:
        await self.send_raw(
            topic, key=envelope.key, value=envelope.value(), headers=envelope.headers()
        )

    async def is_ready(self) -> bool:
        """True when the broker answers a metadata request."""
        if self._kafka_client is None:
            return False
        try:
            await asyncio.wait_for(self._kafka.client.fetch_all_metadata(), timeout=2.0)
        except (KafkaError, TimeoutError, OSError):
            return False
        return True
