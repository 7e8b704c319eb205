"""Group commit for callers that each need one durable write: the calls that arrive while one
batch is being written go together into the next, so a burst costs a few transactions, not one
each; an idle system writes a call at once. Each caller gets its own result, and only once its
batch has committed.

Under steady load the writer may also hold a small batch for more calls, until its oldest call
has waited ``linger_s``: a transaction costs about the same for one call as for twenty. Only
while calls have recently been arriving less than ``linger_s`` apart, so an idle system never
waits, and calls that already waited through the previous write go at once.

One batch is written at a time. If a batch fails with anything but an outage, its calls are
written again one at a time, so one bad call does not fail the others.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sagakit.errors import InfrastructureError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        name: str,
        max_batch: int = 200,
        linger_s: float = 0.0,
    ) -> None:
        """``write`` stores a batch in one transaction and returns a result per item, in order."""
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._gap_s = math.inf  # recent time between two calls, smoothed
        self._last_call: float | None = None
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._arrived: list[float] = []  # when each waiting call came, in the same order
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._arrived.append(self._measure_gap())
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name=f"{self._name}-writer")
        # Shielded: a caller that goes away (a client hanging up) leaves its batch unharmed.
        return await asyncio.shield(future)

    async def _write_all(self) -> None:
        while self._waiting:
            await self._gather()
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            del self._arrived[: self._max_batch]
            try:
                await self._write_batch(batch)
            except Exception as exc:
                if len(batch) == 1 or isinstance(exc, InfrastructureError):
                    _fail(batch, exc)
                    continue
                log.warning(
                    "%s: a batch of %d failed (%s); one by one", self._name, len(batch), exc
                )
                for one in batch:
                    try:
                        await self._write_batch([one])
                    except Exception as single:
                        _fail([one], single)

    def _measure_gap(self) -> float:
        """Note a call's arrival (the smoothed gap between calls); returns its time."""
        now = time.monotonic()
        if self._last_call is not None:
            gap = now - self._last_call
            self._gap_s = gap if math.isinf(self._gap_s) else 0.7 * self._gap_s + 0.3 * gap
        self._last_call = now
        return now

    async def _gather(self) -> None:
        """Hold a batch that is not full until its oldest call has waited ``linger_s``, when
        another call is expected within that (calls recently came less than that apart)."""
        if (
            self._linger_s
            and len(self._waiting) < self._max_batch
            and self._gap_s <= self._linger_s
        ):
            left = self._arrived[0] + self._linger_s - time.monotonic()
            if left > 0:
                await asyncio.sleep(left)

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        results = await self._write([item for item, _ in batch])
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
