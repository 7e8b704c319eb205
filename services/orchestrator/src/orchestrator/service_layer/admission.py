"""Admission control: a bound on the sagas in flight, so load never turns into timeouts.

Without it a burst is accepted faster than it can be processed, the commands queue in Kafka
longer than the step timeout, and the saga compensates orders that had stock and a good card.
With it the queue ahead of every step holds at most ``max_in_flight`` sagas, which at the
system's throughput is seconds, far below the step timeout.

Past the bound:
- ``POST /orders`` answers 503 with ``Retry-After`` (an Idempotency-Key makes the retry safe):
  nothing is accepted that the system cannot start now, so nothing accepted is at risk, and the
  refusal costs a few microseconds, no database work;
- the ``orders`` topic is read no faster than places free up (``Consumer.throttle``): the
  topic is the queue, and
  a saga starts when capacity frees; its step clock starts when its command is sent.

The count of sagas in flight is read from the database a few times a second and counts every
replica's sagas; orders admitted since the last read are added to it. It is a soft bound: all
replicas admitting at once between two reads may pass it by a little.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from sagakit.backoff import sleep_unless
from sagakit.db.errors import is_retriable_db_error
from sagakit.errors import InfrastructureError

log = logging.getLogger(__name__)


class AdmissionControl:
    def __init__(
        self,
        count_in_flight: Callable[[], Awaitable[int]],
        *,
        max_in_flight: int,
        refresh_s: float = 0.1,
    ) -> None:
        self._count_in_flight = count_in_flight
        self.max_in_flight = max_in_flight
        self._refresh_s = refresh_s
        self._counted = 0  # in flight at the last read
        self._admitted = 0  # admitted here since then
        self._finished_per_s = 0.0  # recent drain rate, for Retry-After

    @property
    def in_flight(self) -> int:
        return self._counted + self._admitted

    def room(self) -> int:
        return max(self.max_in_flight - self.in_flight, 0)

    def admit(self, count: int = 1) -> bool:
        """Take places for new sagas; False (and none taken) when they do not fit."""
        if count > self.room():
            return False
        self._admitted += count
        return True

    def retry_after_s(self) -> int:
        """Seconds until a place is likely free (at least 1)."""
        excess = self.in_flight - self.max_in_flight + 1
        if self._finished_per_s <= 0:
            return 1
        return max(1, math.ceil(excess / self._finished_per_s))

    async def run(self, stopping: asyncio.Event) -> None:
        """Keep the count fresh until ``stopping`` (a service worker)."""
        loop = asyncio.get_running_loop()
        last_at, last_count = loop.time(), 0
        while not stopping.is_set():
            try:
                counted = await self._count_in_flight()
            except Exception as exc:
                if not (isinstance(exc, InfrastructureError) or is_retriable_db_error(exc)):
                    raise
                log.warning("admission: cannot count the sagas in flight (%s)", exc)
            else:
                now = loop.time()
                # Sagas that left since the last read: what was there plus what came, less now.
                drained = max(last_count + self._admitted - counted, 0)
                if now > last_at:
                    rate = drained / (now - last_at)
                    self._finished_per_s = 0.8 * self._finished_per_s + 0.2 * rate
                self._counted, self._admitted = counted, 0
                last_at, last_count = now, counted
            await sleep_unless(stopping, self._refresh_s)
