"""Fixtures of the audit's tests: the four services' test databases (migrated once, emptied before
each test) and ``shop``, which writes a saga of each kind into them with raw SQL, as the services
would have left it, plus its confirmation email in a scratch mailbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from notification.domain.confirmation import build_confirmation
from payment.adapters.simulated_stripe import SimulatedStripe
from sagakit.contracts import PricedLine
from sagakit.db.engine import create_engine
from sagakit.db.migrations import upgrade
from sagakit.db.pool import Database
from sagakit.testing.databases import truncate_all
from sagakit.testing.infra import Infra
from sagaops.audit import AuditTargets

ROOT = Path(__file__).resolve().parents[4]
SERVICES = ("orchestrator", "inventory", "payment", "notification")
SETTLED_AGE_S = 3600.0  # well past the audit's grace period in these tests
GRACE_S = 60.0

# kind -> order status, saga status, step statuses (reserve, pay, notify)
KINDS: dict[str, tuple[str, str, tuple[str, str, str]]] = {
    "confirmed": ("CONFIRMED", "COMPLETED", ("SUCCEEDED", "SUCCEEDED", "SUCCEEDED")),
    "out_of_stock": ("CANCELLED", "FAILED", ("FAILED", "PENDING", "PENDING")),
    "declined": ("CANCELLED", "COMPENSATED", ("COMPENSATED", "FAILED", "PENDING")),
    "email_rejected": ("CANCELLED", "COMPENSATED", ("COMPENSATED", "COMPENSATED", "FAILED")),
    "needs_attention": (
        "NEEDS_ATTENTION",
        "COMPENSATION_FAILED",
        ("SUCCEEDED", "COMPENSATING", "FAILED"),
    ),
    "in_flight": ("PENDING", "RUNNING", ("RUNNING", "PENDING", "PENDING")),
}
STEPS = (
    ("reserve_inventory", "inventory"),
    ("process_payment", "payment"),
    ("send_notification", "notification"),
)
PRICES = {"widget": 1999, "gadget": 500}


@dataclass
class PlacedOrder:
    kind: str
    order_id: str
    saga_id: str
    total: int
    lines: list[tuple[str, int]]  # product, quantity
    commands: dict[str, str] = field(default_factory=dict)  # step -> last command's message id
    payment_id: str | None = None


class Shop:
    """Writes consistent data the way the services would, so a test can break one thing."""

    def __init__(self, engines: dict[str, AsyncEngine], maildir: Path) -> None:
        self.engines = engines
        self.maildir = maildir
        self._offset = 0

    def targets(self, **overrides: Any) -> AuditTargets:
        fields: dict[str, Any] = {
            "orchestrator_url": str(
                self.engines["orchestrator"].url.render_as_string(hide_password=False)
            ),
            "inventory_url": self.engines["inventory"].url.render_as_string(hide_password=False),
            "payment_url": self.engines["payment"].url.render_as_string(hide_password=False),
            "notification_url": self.engines["notification"].url.render_as_string(
                hide_password=False
            ),
            "maildir": self.maildir,
            "grace_s": GRACE_S,
        }
        fields.update(overrides)
        return AuditTargets(**fields)

    async def sql(self, db: str, statement: str, **params: Any) -> list[Any]:
        async with self.engines[db].begin() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    async def product(self, product_id: str, stock: int) -> None:
        await self.sql(
            "inventory",
            "INSERT INTO products (product_id, name, price, currency, available, reserved,"
            " initial_stock) VALUES (:p, :p, :price, 'USD', :stock, 0, :stock)",
            p=product_id,
            price=PRICES[product_id],
            stock=stock,
        )

    async def inbox(self, db: str, message_id: str, message_type: str) -> None:
        self._offset += 1
        await self.sql(
            db,
            'INSERT INTO inbox (message_id, message_type, topic, partition, "offset")'
            " VALUES (:m, :t, :topic, 0, :o)",
            m=message_id,
            t=message_type,
            topic=f"{db}.commands",
            o=self._offset,
        )

    async def order(
        self,
        kind: str,
        lines: list[tuple[str, int]] | None = None,
        *,
        settled: bool = True,
        email: bool = True,
    ) -> PlacedOrder:
        lines = lines or [("widget", 1)]
        order_status, saga_status, step_statuses = KINDS[kind]
        order = PlacedOrder(
            kind=kind,
            order_id=str(uuid.uuid4()),
            saga_id=str(uuid.uuid4()),
            total=sum(PRICES[p] * q for p, q in lines),
            lines=lines,
        )
        age = SETTLED_AGE_S if settled else 0.0
        priced = kind not in ("out_of_stock", "in_flight")
        await self._orchestrator(order, order_status, saga_status, step_statuses, age, priced)
        await self._inventory(order, kind, age)
        await self._payment(order, kind, age)
        await self._notification(order, kind, email)
        return order

    async def _orchestrator(
        self,
        o: PlacedOrder,
        order_status: str,
        saga_status: str,
        step_statuses: tuple[str, str, str],
        age: float,
        priced: bool,
    ) -> None:
        items = json.dumps([{"product_id": p, "quantity": q} for p, q in o.lines])
        await self.sql(
            "orchestrator",
            "INSERT INTO orders (order_id, customer_id, email, items, payment_method, currency,"
            " status, total, request_hash, source, created_at, updated_at) VALUES (:o, 'c1',"
            " 'buyer@example.com', CAST(:items AS jsonb), 'pm_card_visa', 'USD', :status, :total,"
            " 'h', 'api', now() - make_interval(secs => :age), now())",
            o=o.order_id,
            items=items,
            status=order_status,
            total=o.total if priced else None,
            age=age,
        )
        await self.sql(
            "orchestrator",
            "INSERT INTO sagas (saga_id, order_id, definition_name, definition_version, status,"
            " current_step, compensation_attempts, context, traceparent)"
            " VALUES (:s, :o, 'order', 1, :status, 0, 0, '{}', :tp)",
            s=o.saga_id,
            o=o.order_id,
            status=saga_status,
            tp=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        )
        for position, ((name, owner), status) in enumerate(zip(STEPS, step_statuses, strict=True)):
            command_id = None if status == "PENDING" else str(uuid.uuid4())
            await self.sql(
                "orchestrator",
                "INSERT INTO saga_steps (saga_id, position, name, status, command_message_id)"
                " VALUES (:s, :p, :n, :st, :c)",
                s=o.saga_id,
                p=position,
                n=name,
                st=status,
                c=command_id,
            )
            if command_id is not None:
                o.commands[name] = command_id
                if status != "RUNNING":  # a running step's command may not be consumed yet
                    await self.inbox(owner, command_id, f"{name}-command")

    async def _inventory(self, o: PlacedOrder, kind: str, age: float) -> None:
        if kind == "out_of_stock":
            return
        held = kind in ("confirmed", "needs_attention", "in_flight")
        await self.sql(
            "inventory",
            "INSERT INTO reservations (order_id, saga_id, status, total, currency, created_at,"
            " released_at) VALUES (:o, :s, :status, :total, 'USD',"
            " now() - make_interval(secs => :age), CASE WHEN :held THEN NULL ELSE now() END)",
            o=o.order_id,
            s=o.saga_id,
            status="held" if held else "released",
            total=o.total,
            age=age,
            held=held,
        )
        for product_id, quantity in o.lines:
            await self.sql(
                "inventory",
                "INSERT INTO reservation_lines (order_id, product_id, quantity, unit_price,"
                " line_total) VALUES (:o, :p, :q, :u, :t)",
                o=o.order_id,
                p=product_id,
                q=quantity,
                u=PRICES[product_id],
                t=PRICES[product_id] * quantity,
            )
            if held:
                await self.move_stock(product_id, quantity)

    async def move_stock(self, product_id: str, quantity: int) -> None:
        """Move units from available to reserved (negative: back), as reserve/release do."""
        await self.sql(
            "inventory",
            "UPDATE products SET available = available - :q, reserved = reserved + :q"
            " WHERE product_id = :p",
            p=product_id,
            q=quantity,
        )

    async def charge(
        self,
        o: PlacedOrder,
        *,
        status: str = "succeeded",
        key: str | None = None,
        metadata: dict[str, str] | None = None,
        method: str = "pm_card_visa",
        amount: int | None = None,
        age: float = SETTLED_AGE_S,
    ) -> str:
        """A charge in the simulated Stripe's records; returns its payment id."""
        payment_id = f"pi_sim_{uuid.uuid4().hex[:24]}"
        meta = {"order_id": o.order_id, "saga_id": o.saga_id} if metadata is None else metadata
        await self.sql(
            "payment",
            "INSERT INTO simulated_stripe.charges (idempotency_key, payment_id, amount, currency,"
            " payment_method, status, decline_code, message, metadata, created_at) VALUES (:k,"
            " :pid, :amount, 'USD', :method, :status, :code, NULL, CAST(:meta AS jsonb),"
            " now() - make_interval(secs => :age))",
            k=key or f"{o.saga_id}:process_payment",
            pid=payment_id,
            amount=o.total if amount is None else amount,
            method=method,
            status=status,
            code=None if status == "succeeded" else "generic_decline",
            meta=json.dumps(meta),
            age=age,
        )
        return payment_id

    async def gateway_refund(
        self, payment_id: str, amount: int, *, status: str = "succeeded"
    ) -> None:
        await self.sql(
            "payment",
            "INSERT INTO simulated_stripe.refunds (idempotency_key, refund_id, payment_id, amount, status,"
            " reason, message) VALUES (:k, :rid, :pid, :amount, :status, :reason, NULL)",
            k=f"{uuid.uuid4()}:refund_payment:1",
            rid=f"re_sim_{uuid.uuid4().hex[:24]}" if status == "succeeded" else None,
            pid=payment_id,
            amount=amount,
            status=status,
            reason=None if status == "succeeded" else "refund_failed",
        )

    async def _payment(self, o: PlacedOrder, kind: str, age: float) -> None:
        if kind in ("out_of_stock", "in_flight"):
            return
        succeeded = kind != "declined"
        method = "pm_card_refundFail" if kind == "needs_attention" else "pm_card_visa"
        o.payment_id = await self.charge(
            o, status="succeeded" if succeeded else "declined", method=method, age=age
        )
        await self.sql(
            "payment",
            "INSERT INTO payments (order_id, saga_id, amount, currency, payment_method, status,"
            " gateway_payment_id, decline_code, idempotency_key) VALUES (:o, :s, :amount, 'USD',"
            " :method, :status, :pid, :code, :k)",
            o=o.order_id,
            s=o.saga_id,
            amount=o.total,
            method=method,
            status="succeeded" if succeeded else "declined",
            pid=o.payment_id,
            code=None if succeeded else "generic_decline",
            k=f"{o.saga_id}:process_payment",
        )
        if kind == "email_rejected":
            await self.gateway_refund(o.payment_id, o.total)
            await self.refund(o, o.total)
        if kind == "needs_attention":
            await self.gateway_refund(o.payment_id, o.total, status="refused")
            await self.sql(
                "payment",
                "INSERT INTO refund_attempts (order_id, attempt, saga_id, idempotency_key, reason,"
                " detail) VALUES (:o, 1, :s, :k, 'refund_failed', 'refused')",
                o=o.order_id,
                s=o.saga_id,
                k=f"{o.saga_id}:refund_payment:1",
            )

    async def refund(self, o: PlacedOrder, amount: int) -> None:
        await self.sql(
            "payment",
            "INSERT INTO refunds (order_id, saga_id, payment_id, amount, status, refund_id)"
            " VALUES (:o, :s, :pid, :amount, 'succeeded', :rid)",
            o=o.order_id,
            s=o.saga_id,
            pid=o.payment_id if amount else None,
            amount=amount,
            rid=f"re_sim_{uuid.uuid4().hex[:24]}" if amount else None,
        )

    async def _notification(self, o: PlacedOrder, kind: str, email: bool) -> None:
        status = {"confirmed": "sent", "email_rejected": "rejected", "needs_attention": "rejected"}
        if kind not in status:
            return
        await self.notification(o, status[kind])
        if kind == "confirmed" and email:
            self.write_email(o)

    async def notification(self, o: PlacedOrder, status: str) -> None:
        await self.sql(
            "notification",
            "INSERT INTO notifications (order_id, saga_id, email, smtp_message_id, status)"
            " VALUES (:o, :s, 'buyer@example.com', :mid, :status)",
            o=o.order_id,
            s=o.saga_id,
            mid=f"<order-{o.order_id}@saga-shop.local>",
            status=status,
        )

    def write_email(self, o: PlacedOrder, name: str | None = None) -> Path:
        """The confirmation as the local SMTP server stores it (X-Envelope-To, then the message)."""
        message = build_confirmation(
            order_id=uuid.UUID(o.order_id),
            recipient="buyer@example.com",
            sender="orders@saga-shop.local",
            lines=[
                PricedLine(product_id=p, quantity=q, unit_price=PRICES[p], line_total=PRICES[p] * q)
                for p, q in o.lines
            ],
            total=o.total,
            currency="USD",
            date=datetime.now(UTC),
        )
        path = self.maildir / (name or f"{uuid.uuid4().hex}.eml")
        path.write_bytes(b"X-Envelope-To: buyer@example.com\r\n" + message.as_bytes())
        return path

    async def consistent(self) -> dict[str, PlacedOrder]:
        """A saga of every kind, plus one still in flight; every invariant holds."""
        await self.product("widget", 100)
        await self.product("gadget", 10)
        orders = {
            "confirmed": await self.order("confirmed", [("widget", 2)]),
            "confirmed_mixed": await self.order("confirmed", [("widget", 1), ("gadget", 1)]),
            "out_of_stock": await self.order("out_of_stock", [("gadget", 50)]),
            "declined": await self.order("declined"),
            "email_rejected": await self.order("email_rejected"),
            "needs_attention": await self.order("needs_attention"),
            "in_flight": await self.order("in_flight", settled=False),
        }
        # Not ours: another deployment's confirmation and a file being written.
        (self.maildir / "0-other.eml").write_bytes(
            b"Message-ID: <order-00000000-0000-0000-0000-000000000000@saga-shop.local>\r\n\r\nhi"
        )
        (self.maildir / ".1-partial.eml.tmp").write_bytes(b"Message-ID: <x")
        return orders


@pytest.fixture(scope="session")
def audit_urls(infra: Infra) -> dict[str, str]:
    return {service: infra.database_url(service) for service in SERVICES}


@pytest_asyncio.fixture(scope="session")
async def audit_engines(audit_urls: dict[str, str]) -> AsyncIterator[dict[str, AsyncEngine]]:
    for service, url in audit_urls.items():
        ini = ROOT / "services" / service / "alembic.ini"
        await asyncio.to_thread(upgrade, ini, url)
    # The simulated Stripe's own store, which the audit reads as the gateway's records.
    database = Database(audit_urls["payment"], max_size=1)
    await SimulatedStripe(database).ensure_store()
    await database.close()
    engines = {service: create_engine(url, pool_size=2) for service, url in audit_urls.items()}
    yield engines
    for engine in engines.values():
        await engine.dispose()


@pytest_asyncio.fixture
async def shop(audit_engines: dict[str, AsyncEngine], tmp_path: Path) -> Shop:
    """Empty test databases and mailbox, and the writer of consistent sagas."""
    for engine in audit_engines.values():
        await truncate_all(engine)
    maildir = tmp_path / "mail"
    maildir.mkdir()
    return Shop(audit_engines, maildir)
