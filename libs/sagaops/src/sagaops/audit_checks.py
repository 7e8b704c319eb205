"""The invariants, each a pure function of a ``Snapshot`` (no I/O: the sources are read first).

A violation is one line ``"<id>: <why>"``: an order id, a product id, a service name or a DLQ
record's ``topic:partition@offset``. Checks about orders consider only orders created more than
the grace period ago (younger ones may still be in flight), except ``never_charged_twice``: a
second charge is wrong at any age.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sagaops.audit_sources import PARTICIPANTS, SERVICES, GatewayChargeRow, OrderRow, Snapshot

CONFIRMED, CANCELLED, NEEDS_ATTENTION = "CONFIRMED", "CANCELLED", "NEEDS_ATTENTION"
TERMINAL_ORDER_STATUSES = frozenset({CONFIRMED, CANCELLED, NEEDS_ATTENTION})
# orchestrator.domain.status.ORDER_STATUS_FOR (a unit test keeps the two equal).
ORDER_STATUS_FOR = {
    "COMPLETED": CONFIRMED,
    "FAILED": CANCELLED,
    "COMPENSATED": CANCELLED,
    "COMPENSATION_FAILED": NEEDS_ATTENTION,
}
# Which participant consumes each step's command and its compensation: the service named by the
# step's topic in orchestrator.domain.order_workflow (a unit test keeps the two equal). A step
# missing here is looked up in every participant's inbox.
STEP_OWNERS = {
    "reserve_inventory": "inventory",
    "process_payment": "payment",
    "send_notification": "notification",
}
COMPENSATION_EXHAUSTED = "compensation_exhausted"


@dataclass
class Invariant:
    name: str
    description: str
    violations: list[str] = field(default_factory=list)  # "<id>: <why>", one per offender
    notes: list[str] = field(default_factory=list)  # what was allowed or not checked, and why
    skipped: str | None = None  # why the check could not run at all

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def offenders(self) -> list[str]:
        """The ids alone (order, product, service or ``topic:partition@offset``)."""
        return [v.split(": ", 1)[0] for v in self.violations]


Check = Callable[[Snapshot, Invariant], None]
CHECKS: list[tuple[str, str, Check]] = []


def check(name: str, description: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS.append((name, description, fn))
        return fn

    return register


def run_checks(snap: Snapshot) -> list[Invariant]:
    results = []
    for name, description, fn in CHECKS:
        invariant = Invariant(name, description)
        fn(snap, invariant)
        results.append(invariant)
    return results


class _Reasons:
    """Several reasons about one id become one violation line (the count stays per offender)."""

    def __init__(self) -> None:
        self._by_id: dict[str, list[str]] = defaultdict(list)

    def add(self, ident: str, why: str) -> None:
        self._by_id[ident].append(why)

    def into(self, invariant: Invariant) -> None:
        invariant.violations.extend(f"{i}: {'; '.join(w)}" for i, w in self._by_id.items())


def _settled(snap: Snapshot, *statuses: str) -> Iterable[OrderRow]:
    return (o for o in snap.orders.values() if o.settled and (not statuses or o.status in statuses))


def _young_note(snap: Snapshot, invariant: Invariant) -> None:
    young = sum(1 for o in snap.orders.values() if not o.settled)
    if young:
        invariant.notes.append(f"{young} orders younger than {snap.grace_s:g}s not checked")


def _cents(amount: int | None) -> str:
    return "none" if amount is None else str(amount)


# --- 1 --------------------------------------------------------------------------------------------


@check(
    "orders_terminal",
    "every order older than the grace period is CONFIRMED/CANCELLED/NEEDS_ATTENTION, "
    "has exactly one saga, and the saga's status agrees",
)
def orders_terminal(snap: Snapshot, inv: Invariant) -> None:
    sagas_of: dict[str, list[str]] = defaultdict(list)
    for saga in snap.sagas.values():
        sagas_of[saga.order_id].append(saga.status)
    for order in _settled(snap):
        sagas = sagas_of.get(order.order_id, [])
        if len(sagas) != 1:
            inv.violations.append(f"{order.order_id}: {order.status} with {len(sagas)} sagas")
        elif order.status not in TERMINAL_ORDER_STATUSES:
            inv.violations.append(
                f"{order.order_id}: still {order.status} after the grace period (saga {sagas[0]})"
            )
        elif ORDER_STATUS_FOR.get(sagas[0]) != order.status:
            inv.violations.append(f"{order.order_id}: order {order.status} but saga {sagas[0]}")
    _young_note(snap, inv)


# --- 2 --------------------------------------------------------------------------------------------


@check(
    "stock_conservation",
    "per product initial_stock = available + reserved, and reserved = the units of held "
    "reservations; every CONFIRMED order still holds its reservation",
)
def stock_conservation(snap: Snapshot, inv: Invariant) -> None:
    for p in snap.products.values():
        if p.initial_stock != p.available + p.reserved:
            inv.violations.append(
                f"{p.product_id}: initial stock {p.initial_stock} != available {p.available}"
                f" + reserved {p.reserved}"
            )
        held = snap.held_quantity.get(p.product_id, 0)
        if p.reserved != held:
            inv.violations.append(
                f"{p.product_id}: reserved {p.reserved} but held reservations hold {held}"
            )
    for product_id, held in snap.held_quantity.items():
        if product_id not in snap.products:
            inv.violations.append(
                f"{product_id}: {held} units held of a product not in the catalog"
            )
    for order in _settled(snap, CONFIRMED):
        reservation = snap.reservations.get(order.order_id)
        if reservation is None or reservation.status != "held":
            state = "no reservation" if reservation is None else f"reservation {reservation.status}"
            inv.violations.append(f"{order.order_id}: CONFIRMED with {state}")


# --- 3 --------------------------------------------------------------------------------------------


@check(
    "no_stock_held_by_cancelled",
    "no held reservation for a CANCELLED order, or for an order unknown to the orchestrator "
    "(older than the grace period); NEEDS_ATTENTION may hold (reported as a note)",
)
def no_stock_held_by_cancelled(snap: Snapshot, inv: Invariant) -> None:
    needing_attention = []
    for reservation in snap.reservations.values():
        if reservation.status != "held":
            continue
        order = snap.orders.get(reservation.order_id)
        if order is None:
            if reservation.settled:
                inv.violations.append(
                    f"{reservation.order_id}: holds stock but the orchestrator has no such order"
                )
        elif order.settled and order.status == CANCELLED:
            inv.violations.append(f"{order.order_id}: CANCELLED but its reservation is held")
        elif order.settled and order.status == NEEDS_ATTENTION:
            needing_attention.append(order.order_id)
    if needing_attention:
        inv.notes.append(
            f"{len(needing_attention)} NEEDS_ATTENTION orders still hold stock (their compensation"
            f" did not finish; allowed): {', '.join(sorted(needing_attention)[:10])}"
        )


# --- 4 --------------------------------------------------------------------------------------------


@check(
    "confirmed_paid_once",
    "a CONFIRMED order has one succeeded payment of its total (= the reservation's total, "
    "same currency) and nothing refunded, in the payment records or the gateway's",
)
def confirmed_paid_once(snap: Snapshot, inv: Invariant) -> None:
    reasons = _Reasons()
    for order in _settled(snap, CONFIRMED):
        oid = order.order_id
        payment = snap.payments.get(oid)
        if payment is None or payment.status != "succeeded":
            reasons.add(oid, "no payment" if payment is None else f"payment {payment.status}")
        else:
            reservation = snap.reservations.get(oid)
            reserved = None if reservation is None else reservation.total
            if payment.amount != reserved:
                reasons.add(oid, f"charged {payment.amount} but reserved total {_cents(reserved)}")
            if payment.amount != order.total:
                reasons.add(oid, f"charged {payment.amount} but order total {_cents(order.total)}")
            if payment.currency.upper() != order.currency.upper():
                reasons.add(oid, f"charged in {payment.currency}, order in {order.currency}")
            gateway_refunded = snap.gateway_refunded.get(payment.gateway_payment_id or "", 0)
            if gateway_refunded:
                reasons.add(oid, f"the gateway refunded {gateway_refunded}")
        refunded = snap.refunds.get(oid, 0)
        if refunded > 0:
            reasons.add(oid, f"refunded {refunded}")
    reasons.into(inv)


# --- 5 --------------------------------------------------------------------------------------------


def charges_by_order(snap: Snapshot) -> tuple[dict[str, list[GatewayChargeRow]], list[str]]:
    """The gateway's charges per order id, and the charges no order can be found for.

    The order id is in the charge's metadata; failing that, the saga id (metadata, or the
    idempotency key ``<saga_id>:process_payment``) names the order through the orchestrator.
    """
    by_order: dict[str, list[GatewayChargeRow]] = defaultdict(list)
    orphans = []
    for charge in snap.gateway_charges:
        order_id = charge.order_id
        if not order_id:
            saga_id = charge.saga_id or charge.idempotency_key.split(":", 1)[0]
            saga = snap.sagas.get(saga_id)
            order_id = saga.order_id if saga else None
        if order_id:
            by_order[order_id].append(charge)
        elif charge.settled:
            orphans.append(charge.payment_id)
    return by_order, orphans


@check(
    "cancelled_not_charged",
    "a CANCELLED order has no succeeded charge, or one fully refunded, in the payment "
    "records and the gateway's",
)
def cancelled_not_charged(snap: Snapshot, inv: Invariant) -> None:
    reasons = _Reasons()
    by_order, _ = charges_by_order(snap)
    for order in _settled(snap, CANCELLED):
        oid = order.order_id
        payment = snap.payments.get(oid)
        if payment is not None and payment.status == "succeeded":
            refunded = snap.refunds.get(oid)
            if refunded is None:
                reasons.add(oid, f"charged {payment.amount}, never refunded")
            elif refunded != payment.amount:
                reasons.add(oid, f"charged {payment.amount}, refunded {refunded}")
        for charge in by_order.get(oid, []):
            if charge.status != "succeeded":
                continue
            refunded_at_gateway = snap.gateway_refunded.get(charge.payment_id, 0)
            # More refunded than charged is never_charged_twice's finding, not this one.
            if refunded_at_gateway < charge.amount:
                reasons.add(
                    oid,
                    f"gateway charge {charge.payment_id} of {charge.amount}"
                    f" refunded {refunded_at_gateway}",
                )
    reasons.into(inv)


# --- 6 --------------------------------------------------------------------------------------------


@check(
    "never_charged_twice",
    "per order at most one succeeded charge in the gateway's own records, never more refunded "
    "than charged, and no charge for an order the orchestrator does not know",
)
def never_charged_twice(snap: Snapshot, inv: Invariant) -> None:
    reasons = _Reasons()
    by_order, orphans = charges_by_order(snap)
    for oid, charges in by_order.items():
        succeeded = [c for c in charges if c.status == "succeeded"]
        if len(succeeded) > 1:
            ids = ", ".join(f"{c.payment_id} ({c.amount})" for c in succeeded)
            reasons.add(oid, f"{len(succeeded)} succeeded charges: {ids}")
        for c in charges:
            refunded = snap.gateway_refunded.get(c.payment_id, 0)
            if refunded > (c.amount if c.status == "succeeded" else 0):
                reasons.add(oid, f"{refunded} refunded on charge {c.payment_id} of {c.amount}")
        order = snap.orders.get(oid)
        if order is None and any(c.settled for c in charges):
            reasons.add(oid, "charged, but the orchestrator has no such order")
    for payment_id in orphans:
        reasons.add(payment_id, "gateway charge whose order cannot be found (no order/saga id)")
    reasons.into(inv)
    if not snap.gateway_charges:
        inv.notes.append("the simulated Stripe recorded no charges (the real Stripe in use?)")


# --- 7 --------------------------------------------------------------------------------------------


@check(
    "one_email_per_confirmed_order",
    "a CONFIRMED order's notification is sent (exactly one .eml in the mailbox); a CANCELLED "
    "order has none",
)
def one_email_per_confirmed_order(snap: Snapshot, inv: Invariant) -> None:
    reasons = _Reasons()
    mails = snap.mails
    for order in _settled(snap, CONFIRMED, CANCELLED):
        oid = order.order_id
        status = snap.notifications.get(oid)
        in_mailbox = None if mails is None else mails.get(oid, 0)
        if order.status == CONFIRMED:
            if status != "sent":
                reasons.add(
                    oid,
                    "CONFIRMED, no notification"
                    if status is None
                    else f"CONFIRMED, notification {status}",
                )
            if in_mailbox is not None and in_mailbox != 1:
                reasons.add(oid, f"CONFIRMED, {in_mailbox} emails in the mailbox")
        else:
            if status == "sent":
                reasons.add(oid, "CANCELLED, but the notification was sent")
            if in_mailbox:
                reasons.add(oid, f"CANCELLED, {in_mailbox} emails in the mailbox")
    reasons.into(inv)
    if mails is None:
        inv.notes.append("mailbox not checked (no maildir given)")


# --- 8 --------------------------------------------------------------------------------------------


@check(
    "outbox_drained",
    "every service's outbox is empty (rows younger than the grace period may still be in flight)",
)
def outbox_drained(snap: Snapshot, inv: Invariant) -> None:
    for service in SERVICES:
        count = snap.outboxes.get(service)
        if count is None:
            continue
        if count.stale:
            inv.violations.append(
                f"{service}: {count.stale} outbox rows older than {snap.grace_s:g}s"
                f" ({count.total} in all)"
            )
        elif count.total:
            inv.notes.append(f"{service}: {count.total} young outbox rows still being published")


# --- 9 --------------------------------------------------------------------------------------------


@check(
    "inbox_complete",
    "every applied step of a finished saga (SUCCEEDED/FAILED/COMPENSATED) has its command in "
    "the inbox of the participant that owns it",
)
def inbox_complete(snap: Snapshot, inv: Invariant) -> None:
    reasons = _Reasons()
    anywhere: set[str] | None = None
    for step in snap.steps:
        saga = snap.sagas.get(step.saga_id)
        order = snap.orders.get(saga.order_id) if saga else None
        if saga is None or order is None or not order.settled:
            continue
        owner = STEP_OWNERS.get(step.name)
        if owner is not None:
            inbox = snap.inboxes.get(owner, set())
        else:
            if anywhere is None:
                anywhere = set().union(*(snap.inboxes.get(p, set()) for p in PARTICIPANTS))
            inbox = anywhere
        if step.command_message_id not in inbox:
            reasons.add(
                order.order_id,
                f"{step.name} is {step.status} but its command {step.command_message_id}"
                f" is not in {owner or 'any participant'}'s inbox",
            )
    reasons.into(inv)


# --- 10 -------------------------------------------------------------------------------------------


@check(
    "dlq_only_deliberate",
    "every DLQ record was injected on purpose (poison header) or is a compensation_exhausted "
    "alert for a NEEDS_ATTENTION order",
)
def dlq_only_deliberate(snap: Snapshot, inv: Invariant) -> None:
    scan = snap.dlq
    if scan is None:
        inv.skipped = "no Kafka address given"
        return
    deliberate = alerts = 0
    poison_header = snap.poison_header.lower()
    for record in scan.records:
        where = f"{record.topic}:{record.partition}@{record.offset}"
        code = record.headers.get("dlq-error-code", "?")
        if any(name.lower() == poison_header for name in record.headers):
            deliberate += 1
            continue
        if code == COMPENSATION_EXHAUSTED:
            order_id = record.headers.get("order-id", "")
            order = snap.orders.get(order_id)
            if order is not None and order.status == NEEDS_ATTENTION:
                alerts += 1
                continue
            status = "unknown to the orchestrator" if order is None else order.status
            inv.violations.append(
                f"{where}: dlq-error-code={code} for order {order_id or '?'}, which is {status}"
            )
            continue
        reason = " ".join(record.headers.get("dlq-reason", "?").split())  # one line
        inv.violations.append(f"{where}: dlq-error-code={code} dlq-reason={reason[:300]}")
    for partition in scan.incomplete:
        inv.violations.append(f"{partition}, not read to its end in time")
    inv.notes.append(
        f"{len(scan.records)} DLQ records in {len(scan.topics_read)} topics: {deliberate} "
        f"deliberate poison, {alerts} alerts of NEEDS_ATTENTION orders"
    )
    if scan.missing_topics:
        inv.notes.append(f"topics not found (not read): {', '.join(scan.missing_topics)}")
