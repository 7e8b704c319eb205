"""``GroupCommit``: calls that arrive together share a transaction, each caller gets its own
result once its batch is written, a bad call does not fail the others, and the linger gathers
more calls under steady load but never delays an idle system."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

import pytest

from sagakit.db.group_commit import GroupCommit
from sagakit.errors import InfrastructureError

pytestmark = pytest.mark.unit


class _Store:
    def __init__(self, *, write_s: float = 0.0, refuse: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self._write_s = write_s
        self._refuse = refuse

    async def write(self, items: Sequence[int]) -> list[int]:
        await asyncio.sleep(self._write_s)
        if self._refuse in items:
            raise ValueError(f"{self._refuse} refused")
        self.batches.append(list(items))
        return [i * 10 for i in items]


async def _first_then_the_rest(group: GroupCommit[int, int], n: int) -> list[object]:
    """Call 0, then 1..n-1 while call 0 is being written."""
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0.005)
    rest = asyncio.gather(*(group.submit(i) for i in range(1, n)), return_exceptions=True)
    return [*(await asyncio.gather(first, return_exceptions=True)), *(await rest)]


async def test_calls_arriving_during_a_write_go_together_into_the_next() -> None:
    store = _Store(write_s=0.05)
    group = GroupCommit(store.write, name="t")

    results = await _first_then_the_rest(group, 5)

    assert results == [0, 10, 20, 30, 40]
    assert store.batches == [[0], [1, 2, 3, 4]]  # the first went at once, the rest waited


async def test_a_bad_call_fails_alone_and_the_others_are_written() -> None:
    store = _Store(refuse=2)
    group = GroupCommit(store.write, name="t")

    results = await asyncio.gather(*(group.submit(i) for i in range(4)), return_exceptions=True)

    assert results[:2] + results[3:] == [0, 10, 30]
    assert isinstance(results[2], ValueError)
    assert sorted(i for batch in store.batches for i in batch) == [0, 1, 3]


async def test_an_outage_fails_the_whole_batch_without_retrying_one_by_one() -> None:
    calls = 0

    async def down(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise InfrastructureError("database unavailable")

    group = GroupCommit(down, name="t")
    results = await _first_then_the_rest(group, 3)

    assert all(isinstance(r, InfrastructureError) for r in results)
    assert calls == 2  # [0], then [1, 2] together: no third try one at a time


async def test_an_idle_system_is_written_at_once_whatever_the_linger() -> None:
    store = _Store()
    group = GroupCommit(store.write, name="t", linger_s=1.0)

    started = time.monotonic()
    assert await group.submit(7) == 70

    assert time.monotonic() - started < 0.5  # nothing suggested more calls were coming


async def test_under_steady_load_the_linger_gathers_calls_into_fewer_batches() -> None:
    async def steady(group: GroupCommit[int, int]) -> None:
        calls = []
        for i in range(60):  # 200 calls per second
            calls.append(asyncio.create_task(group.submit(i)))
            await asyncio.sleep(0.005)
        assert await asyncio.gather(*calls) == [i * 10 for i in range(60)]

    without, gathered = _Store(), _Store()
    await steady(GroupCommit(without.write, name="t"))
    await steady(GroupCommit(gathered.write, name="t", linger_s=0.05))

    assert len(without.batches) > 40  # each call written almost alone
    assert len(gathered.batches) < 20
    assert [i for batch in gathered.batches for i in batch] == list(range(60))  # in order


async def test_after_a_burst_a_pause_means_the_next_call_is_written_at_once() -> None:
    store = _Store()
    group = GroupCommit(store.write, name="t", linger_s=0.2)
    burst = []
    for i in range(20):
        burst.append(asyncio.create_task(group.submit(i)))
        await asyncio.sleep(0.005)
    await asyncio.gather(*burst)
    await asyncio.sleep(1.0)  # the burst is over

    started = time.monotonic()
    assert await group.submit(99) == 990

    assert time.monotonic() - started < 0.15  # no linger


async def test_calls_that_waited_through_a_write_are_not_held_again() -> None:
    starts: list[float] = []

    async def slow(items: Sequence[int]) -> list[int]:
        starts.append(time.monotonic())
        await asyncio.sleep(0.1)
        return list(items)

    group = GroupCommit(slow, name="t", linger_s=0.1)
    calls = []
    for i in range(100):  # 200 calls per second for 0.5 s: a backlog builds during each write
        calls.append(asyncio.create_task(group.submit(i)))
        await asyncio.sleep(0.005)
    assert await asyncio.gather(*calls) == list(range(100))

    gaps = sorted(b - a for a, b in itertools.pairwise(starts[1:]))
    assert gaps[len(gaps) // 2] < 0.15  # a write, then the next at once: not a write + a linger
