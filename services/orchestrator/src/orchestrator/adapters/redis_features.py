"""What Redis does for the order API: an ``Idempotency-Key`` cache, a per-customer rate limit and
live order status over pub/sub. PostgreSQL stays the truth for all of it.

Redis is optional at run time: when it is down every feature degrades (cache miss, requests
allowed, no live push), one clear log line says so, and sagas keep running. It recovers by
itself when Redis is back.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class RedisFeatures:
    def __init__(
        self,
        url: str,
        *,
        rate_limit_per_minute: int,
        idempotency_ttl_s: int,
        prefix: str = "",
    ) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, retry_on_timeout=False
        )
        self._rate_limit = rate_limit_per_minute
        self._ttl = idempotency_ttl_s
        self._prefix = f"{prefix}saga-shop:"
        self._degraded = False

    async def close(self) -> None:
        await self._redis.aclose()

    async def ready(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    # --- Idempotency-Key cache ------------------------------------------------------------------

    async def cached_response(self, customer_id: str, key: str) -> dict[str, Any] | None:
        raw = await self._call("get", self._idem(customer_id, key))
        return orjson.loads(raw) if raw else None

    async def cache_response(self, customer_id: str, key: str, body: dict[str, Any]) -> None:
        await self._call("set", self._idem(customer_id, key), orjson.dumps(body), ex=self._ttl)

    # --- rate limit -----------------------------------------------------------------------------

    async def allow(self, customer_id: str) -> bool:
        """Fixed one-minute window per customer. Without Redis, every request is allowed."""
        window = int(time.time() // 60)
        key = f"{self._prefix}rate:{customer_id}:{window}"
        pipeline = self._redis.pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, 120, nx=True)  # one round trip, first order of the window or not
        replies = await self._call_pipeline(pipeline)
        if replies is None:
            return True
        return int(replies[0]) <= self._rate_limit

    @staticmethod
    def rate_window_left_s() -> int:
        """Seconds until the current one-minute window ends (a 429's Retry-After)."""
        return 60 - int(time.time()) % 60

    # --- live order status ----------------------------------------------------------------------

    async def publish_status(self, order_id: str, body: dict[str, Any]) -> None:
        await self.publish_statuses({order_id: body})

    async def publish_statuses(self, bodies: dict[str, dict[str, Any]]) -> None:
        """One message per order on its channel, all in one round trip (a pipeline)."""
        if not bodies:
            return
        pipeline = self._redis.pipeline(transaction=False)
        for order_id, body in bodies.items():
            pipeline.publish(self._channel(order_id), orjson.dumps(body))
        await self._call_pipeline(pipeline)

    @contextlib.asynccontextmanager
    async def subscription(self, order_id: str) -> AsyncIterator[StatusUpdates]:
        """Subscribed on entry (raises RedisError if Redis is down): read the order after that,
        so an update published in between is not lost."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel(order_id))
            yield StatusUpdates(pubsub)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    # --- plumbing -------------------------------------------------------------------------------

    async def _call(self, command: str, *args: Any, **kwargs: Any) -> Any:
        return await self._guarded(getattr(self._redis, command)(*args, **kwargs))

    async def _call_pipeline(self, pipeline: Any) -> Any:
        return await self._guarded(pipeline.execute())

    async def _guarded(self, call: Any) -> Any:
        try:
            result = await call
        except (RedisError, OSError) as exc:
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "Redis unavailable (%s): idempotency cache, rate limit and live "
                    "status are degraded; orders and sagas continue",
                    exc,
                )
            return None
        if self._degraded:
            self._degraded = False
            log.info("Redis is back: idempotency cache, rate limit and live status restored")
        return result

    def _idem(self, customer_id: str, key: str) -> str:
        return f"{self._prefix}idem:{customer_id}:{key}"

    def _channel(self, order_id: str) -> str:
        return f"{self._prefix}order-status:{order_id}"


class StatusUpdates:
    """The status updates of one subscribed order."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next update, or None if none came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None and message.get("type") == "message":
                return cast(dict[str, Any], orjson.loads(message["data"]))
        return None
