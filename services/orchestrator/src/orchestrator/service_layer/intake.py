"""Order intake, shared by ``POST /orders`` and the ``orders`` topic: same validation (the
``PlaceOrder`` contract), idempotent on the order id and on the client's ``Idempotency-Key``.

PostgreSQL constraints are the truth (primary key on order id, unique customer + key); a race
between two identical requests is settled by the insert (``ON CONFLICT DO NOTHING``), and the
loser answers with the winner's order.

Orders are placed in batches: one transaction stores many orders and starts their sagas with a
few multi-row statements. ``IntakeQueue`` gathers the HTTP requests that arrive while a batch is
being written into the next one (group commit); the ``orders`` topic arrives in batches anyway.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from orchestrator.adapters import saga_store
from orchestrator.adapters.saga_store import NewOrder, StoredOrder
from orchestrator.domain.order_workflow import order_context
from orchestrator.domain.status import OrderStatus
from orchestrator.domain.workflow import WorkflowDefinition
from orchestrator.service_layer.sagas import NewSaga, SagaService
from sagakit.contracts import PlaceOrder
from sagakit.db.group_commit import GroupCommit
from sagakit.errors import BusinessError
from sagakit.ids import new_id
from sagakit.outbox.unit_of_work import UnitOfWork


class IdempotencyConflict(BusinessError):
    """The Idempotency-Key (or order id) was used before for a different request."""

    code = "idempotency_conflict"


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order_id: uuid.UUID
    status: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class PlacedSaga:
    saga_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Placed:
    order: PlacedOrder
    saga: PlacedSaga
    created: bool  # False: an earlier identical request already placed it


@dataclass(frozen=True, slots=True)
class Placement:
    order: PlaceOrder
    idempotency_key: str | None
    source: str  # "api" or "topic"
    traceparent: str


def request_hash(order: PlaceOrder) -> str:
    """A fingerprint of what was asked (not of the order id we assigned)."""
    body = order.model_dump(mode="json", exclude={"order_id"})
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


Outcome = Placed | IdempotencyConflict


class OrderIntake:
    def __init__(self, sagas: SagaService, workflow: WorkflowDefinition) -> None:
        self.sagas = sagas
        self.workflow = workflow

    async def place(
        self,
        uow: UnitOfWork,
        request: PlaceOrder,
        *,
        idempotency_key: str | None,
        source: str,
        traceparent: str,
    ) -> Placed:
        """One order (the caller commits); raises ``IdempotencyConflict``."""
        [outcome] = await self.place_many(
            uow, [Placement(request, idempotency_key, source, traceparent)]
        )
        if isinstance(outcome, IdempotencyConflict):
            raise outcome
        return outcome

    async def place_new(
        self, uow: UnitOfWork, requests: Sequence[Placement]
    ) -> list[Placed] | None:
        """The common case, as writes only (one statement, no transaction around it): every
        order is new. Queues the orders and their sagas; if one was not new after all (a
        replay, a conflict, a race), the commit raises ``asyncpg.UniqueViolationError`` and
        nothing is stored: then ``place_many`` sorts them out. None (nothing queued) when the
        batch itself repeats an order id or key."""
        taken: set[object] = set()
        orders = []
        for request in requests:
            marks = {request.order.order_id, _key(request)} - {None}
            if marks & taken:
                return None
            taken |= marks
            orders.append(_new_order(request, request_hash(request.order)))
        saga_store.insert_orders_at_commit(uow, orders)
        starts = [
            self._start(request, order) for request, order in zip(requests, orders, strict=True)
        ]
        await self.sagas.start(uow, starts)
        return [
            Placed(PlacedOrder(o.order_id, o.status, o.request_hash), PlacedSaga(s.saga_id), True)
            for o, s in zip(orders, starts, strict=True)
        ]

    def _start(self, request: Placement, order: NewOrder) -> NewSaga:
        saga_id = new_id()
        return NewSaga(
            saga_id=saga_id,
            order_id=order.order_id,
            definition=self.workflow,
            context=order_context(request.order, saga_id),
            traceparent=request.traceparent,
            cause=f"order {order.order_id}",
        )

    async def place_many(self, uow: UnitOfWork, requests: Sequence[Placement]) -> list[Outcome]:
        """Store the orders and start their sagas in the caller's transaction (the caller
        commits). One outcome per request, in order."""
        hashes = [request_hash(r.order) for r in requests]
        outcomes: dict[int, Outcome] = {}
        fresh: dict[int, NewOrder] = {}
        taken: set[object] = set()  # order ids and keys placed earlier in this very batch
        twins: list[int] = []
        # The insert comes first: most orders are new, and the constraints tell the others
        # apart (they are looked up below), so the common case costs no look-up.
        for i, (request, fingerprint) in enumerate(zip(requests, hashes, strict=True)):
            marks = {request.order.order_id, _key(request)} - {None}
            if marks & taken:
                twins.append(i)  # answered below, as a replay of the one placed first
                continue
            taken |= marks
            fresh[i] = _new_order(request, fingerprint)

        inserted = await saga_store.insert_orders(uow.conn, list(fresh.values()))
        starts: list[NewSaga] = []
        for i, new in fresh.items():
            if new.order_id not in inserted:
                continue
            start = self._start(requests[i], new)
            starts.append(start)
            outcomes[i] = Placed(
                PlacedOrder(new.order_id, new.status, new.request_hash),
                PlacedSaga(start.saga_id),
                True,
            )
        await self.sagas.start(uow, starts)

        # Placed before (a replay or a conflict), placed meanwhile by a concurrent transaction
        # (theirs stands), or a twin of an order placed just above: all now find the order
        # that won, in this transaction's view.
        again = [i for i, new in fresh.items() if new.order_id not in inserted] + twins
        if again:
            winners = await self._known(uow, [requests[i] for i in again])
            for i in again:
                winner = winners.find(requests[i])
                if winner is None:
                    raise RuntimeError("an order was refused by a constraint but none holds it")
                outcomes[i] = _replay(winner, hashes[i], requests[i].idempotency_key)
        return [outcomes[i] for i in range(len(requests))]

    async def _known(self, uow: UnitOfWork, requests: Sequence[Placement]) -> _Known:
        keys = [k for k in (_key(r) for r in requests) if k]
        rows = await saga_store.find_orders(uow.conn, [r.order.order_id for r in requests], keys)
        return _Known(rows)


class _Known:
    def __init__(self, rows: Sequence[StoredOrder]) -> None:
        self.by_id = {row.order_id: row for row in rows}
        self.by_key = {
            (row.customer_id, row.idempotency_key): row for row in rows if row.idempotency_key
        }

    def find(self, request: Placement) -> StoredOrder | None:
        key = _key(request)
        return self.by_id.get(request.order.order_id) or (self.by_key.get(key) if key else None)


def _key(request: Placement) -> tuple[str, str] | None:
    if request.idempotency_key is None:
        return None
    return (request.order.customer_id, request.idempotency_key)


def _new_order(request: Placement, fingerprint: str) -> NewOrder:
    order = request.order
    return NewOrder(
        order_id=order.order_id,
        customer_id=order.customer_id,
        email=order.email,
        items=[item.model_dump() for item in order.items],
        payment_method=order.payment_method,
        currency=order.currency,
        status=OrderStatus.PENDING,
        idempotency_key=request.idempotency_key,
        request_hash=fingerprint,
        source=request.source,
    )


def _replay(order: StoredOrder, fingerprint: str, key: str | None) -> Outcome:
    if order.request_hash != fingerprint:
        what = f"Idempotency-Key {key!r}" if key else f"order id {order.order_id}"
        return IdempotencyConflict(f"{what} was already used for a different order")
    assert order.saga_id is not None  # an order and its saga are inserted together
    return Placed(
        PlacedOrder(order.order_id, order.status, order.request_hash),
        PlacedSaga(order.saga_id),
        created=False,
    )


class IntakeQueue:
    """``POST /orders`` through group commit: a burst of requests is placed by a few
    transactions (``GroupCommit``), each request answered once its order is stored. A batch of
    new orders is one statement (``OrderIntake.place_new``); a batch with a replay or a
    conflict in it is placed again, carefully, in a transaction (``place_many``)."""

    def __init__(
        self,
        intake: OrderIntake,
        uow_factory: Callable[..., UnitOfWork],
        *,
        max_batch: int = 200,
        linger_s: float = 0.0,
    ) -> None:
        self._intake = intake
        self._uow_factory = uow_factory
        self._group = GroupCommit(
            self._write, name="intake", max_batch=max_batch, linger_s=linger_s
        )

    async def place(self, request: Placement) -> Placed:
        """Raises ``IdempotencyConflict``, or ``InfrastructureError`` if the database is down."""
        outcome = await self._group.submit(request)
        if isinstance(outcome, IdempotencyConflict):
            raise outcome
        return outcome

    async def _write(self, requests: Sequence[Placement]) -> Sequence[Outcome]:
        try:
            async with self._uow_factory(writes_only=True) as uow:
                placed = await self._intake.place_new(uow, requests)
                if placed is not None:
                    await uow.commit()
                    return placed
        except asyncpg.UniqueViolationError:
            pass  # not all new: nothing was stored
        async with self._uow_factory() as uow:
            outcomes = await self._intake.place_many(uow, requests)
            await uow.commit()
        return outcomes
