"""Order intake, shared by ``POST /orders`` and the ``orders`` topic: same validation (the
``PlaceOrder`` contract), idempotent on the order id and on the client's ``Idempotency-Key``.

PostgreSQL constraints are the truth (primary key on order id, unique customer + key); a race
between two identical requests ends in a unique violation, which the caller resolves by reading
the winner's order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from orchestrator.adapters.orm import Order, Saga
from orchestrator.adapters.repository import OrderRepository, SagaRepository
from orchestrator.domain.status import OrderStatus
from orchestrator.domain.workflow import WorkflowDefinition
from orchestrator.service_layer.engine import SagaEngine
from sagakit.contracts import PlaceOrder
from sagakit.db.unit_of_work import UnitOfWork
from sagakit.errors import BusinessError


class IdempotencyConflict(BusinessError):
    """The Idempotency-Key (or order id) was used before for a different request."""

    code = "idempotency_conflict"


@dataclass(frozen=True)
class Placed:
    order: Order
    saga: Saga
    created: bool  # False: an earlier identical request already placed it


def request_hash(order: PlaceOrder) -> str:
    """A fingerprint of what was asked (not of the order id we assigned)."""
    body = order.model_dump(mode="json", exclude={"order_id"})
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class OrderIntake:
    def __init__(self, engine: SagaEngine, workflow: WorkflowDefinition) -> None:
        self.engine = engine
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
        """Store the order and start its saga in the caller's transaction (the caller commits)."""
        orders = OrderRepository(uow.session)
        fingerprint = request_hash(request)
        existing = await orders.get(request.order_id)
        if existing is None and idempotency_key is not None:
            existing = await orders.by_idempotency_key(request.customer_id, idempotency_key)
        if existing is not None:
            return await self._replay(uow, existing, fingerprint, idempotency_key)

        order = Order(
            order_id=request.order_id,
            customer_id=request.customer_id,
            email=request.email,
            items=[item.model_dump() for item in request.items],
            payment_method=request.payment_method,
            currency=request.currency,
            status=OrderStatus.PENDING,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            source=source,
        )
        uow.session.add(order)
        await uow.session.flush()  # the order row must exist before the saga's foreign key
        saga = await self.engine.start(uow, order, self.workflow, traceparent)
        await uow.session.flush()  # surface a unique violation (a concurrent twin) here
        return Placed(order=order, saga=saga, created=True)

    async def lookup(self, uow: UnitOfWork, customer_id: str, key: str) -> Placed | None:
        order = await OrderRepository(uow.session).by_idempotency_key(customer_id, key)
        if order is None:
            return None
        saga = await SagaRepository(uow.session).by_order(order.order_id)
        assert saga is not None
        return Placed(order=order, saga=saga, created=False)

    async def _replay(
        self, uow: UnitOfWork, order: Order, fingerprint: str, key: str | None
    ) -> Placed:
        if order.request_hash != fingerprint:
            what = f"Idempotency-Key {key!r}" if key else f"order id {order.order_id}"
            raise IdempotencyConflict(f"{what} was already used for a different order")
        saga = await SagaRepository(uow.session).by_order(order.order_id)
        assert saga is not None
        return Placed(order=order, saga=saga, created=False)
