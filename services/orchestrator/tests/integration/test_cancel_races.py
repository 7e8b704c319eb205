"""An operator's cancel and a step's reply reaching a RUNNING saga at the same time, on the real
orchestrator database (each in its own transaction, as the admin API and the consumer run them):
exactly one of them wins, the history and ``admin_actions`` agree with each other, and the
compensations run over exactly the steps whose command went out."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from orchestrator_harness import Harness
from sqlalchemy import text

from orchestrator.domain.engine import SagaNotCancellable
from orchestrator.domain.status import SagaStatus, StepStatus
from orchestrator.service_layer.operations import Operations
from sagakit.contracts import (
    InventoryReleased,
    InventoryReserved,
    OrderConfirmationAlreadySent,
    OrderConfirmationSent,
    OrderConfirmationVoided,
    PaymentProcessed,
    PaymentRefunded,
    PricedLine,
)
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message

pytestmark = pytest.mark.integration

LINES = [PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998)]
STEPS = ("reserve_inventory", "process_payment", "send_notification")
COMMANDS = ("ReserveInventory", "ProcessPayment", "SendOrderConfirmation")
COMPENSATIONS = ("ReleaseInventory", "RefundPayment", "VoidOrderConfirmation")


def step_reply(position: int, order_id: uuid.UUID) -> Message:
    if position == 0:
        return InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    if position == 1:
        return PaymentProcessed(order_id=order_id, payment_id="pi_1", amount=3998, currency="USD")
    return OrderConfirmationSent(order_id=order_id, smtp_message_id="<m@test>")


def compensation_reply(command: str, order_id: uuid.UUID, *, email_sent: bool) -> Message:
    if command == "ReleaseInventory":
        return InventoryReleased(order_id=order_id, released_lines=1)
    if command == "RefundPayment":
        return PaymentRefunded(order_id=order_id, refund_id="re_1", amount=3998)
    if email_sent:  # an email cannot be unsent: the participant says so
        return OrderConfirmationAlreadySent(order_id=order_id, smtp_message_id="<m@test>")
    return OrderConfirmationVoided(order_id=order_id)


async def running_at(harness: Harness, position: int) -> tuple[uuid.UUID, uuid.UUID]:
    """A saga RUNNING and waiting for the reply of step ``position``."""
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    for done in range(position):
        await harness.reply(saga_id, step_reply(done, order_id))
    saga = await harness.saga(saga_id)
    assert (saga.status, saga.current_step) == (SagaStatus.RUNNING, position)
    return saga_id, order_id


async def race(
    harness: Harness, ops: Operations, saga_id: uuid.UUID, reply: Envelope[Any], first: str | None
) -> bool:
    """Cancel and reply, in that order, the other, or at once; True if the cancel was done."""

    async def cancel() -> bool:
        try:
            await ops.cancel(saga_id, who="alice", reason="customer called")
        except SagaNotCancellable:
            return False
        return True

    if first == "cancel":
        cancelled = await cancel()
        await harness.deliver(reply)
    elif first == "reply":
        await harness.deliver(reply)
        cancelled = await cancel()
    else:
        cancelled, _ = await asyncio.gather(cancel(), harness.deliver(reply))
    return cancelled


async def settle(
    harness: Harness, saga_id: uuid.UUID, order_id: uuid.UUID, email_sent: bool
) -> None:
    """Answer compensation commands as the participants would, until the saga stops."""
    for _ in range(len(STEPS) + 1):
        if (await harness.saga(saga_id)).status != SagaStatus.COMPENSATING:
            return
        command = await harness.last_command(saga_id)
        assert command.message_type in COMPENSATIONS
        await harness.reply(
            saga_id, compensation_reply(command.message_type, order_id, email_sent=email_sent)
        )
    raise AssertionError("the compensation did not end")


async def check(
    harness: Harness,
    saga_id: uuid.UUID,
    reply: Envelope[Any],
    position: int,
    cancelled: bool,
    email_sent: bool,
) -> str:
    """The invariants of one race; returns who won ("cancel" or "reply")."""
    history = await harness.history(saga_id)
    cause = f"{reply.message_type} {reply.message_id}"
    applied = [h for h in history if h.event == "step_succeeded" and h.cause == cause]
    ignored = [h for h in history if h.event == "reply_ignored" and h.cause == cause]
    cancels = [h for h in history if h.event == "operator_cancel"]
    # Exactly one of the two changed the saga at the step they raced for.
    reply_won = bool(applied) and not ignored
    if cancelled:
        assert len(cancels) == 1
        assert "alice" in (cancels[0].cause or "")
        assert cancels[0].detail == "customer called"
        # The cancel came first (the reply was then ignored) or the reply moved the saga on
        # and the cancel caught it at the next step: both happened in some order, never mixed.
        assert bool(applied) != bool(ignored)
        assert cancels[0].step == STEPS[position + (1 if applied else 0)]
    else:
        assert cancels == []
        assert applied
        assert not ignored
    # The status lines chain: each starts where the previous one ended.
    changes = [(h.from_status, h.to_status) for h in history if h.to_status is not None]
    for (_, before), (after, _) in itertools.pairwise(changes):
        assert after == before, changes
    # admin_actions says what happened, once.
    async with harness.sessions() as session:
        rows = (
            await session.execute(
                text("SELECT operator, action, outcome FROM admin_actions WHERE target = :t"),
                {"t": f"saga:{saga_id}"},
            )
        ).all()
    assert [tuple(r) for r in rows] == [("alice", "cancel", "done" if cancelled else "refused")]
    # Compensations: over exactly the steps whose command went out, last first (an email that
    # went out cannot be voided: the saga then completes, nothing else is undone).
    types = await harness.command_types(saga_id)
    started = [c for c in types if c in COMMANDS]
    compensations = [c for c in types if c in COMPENSATIONS]
    saga = await harness.saga(saga_id)
    if not cancelled:
        assert compensations == []
    elif started[-1] == "SendOrderConfirmation" and email_sent:
        assert compensations == ["VoidOrderConfirmation"]
        assert saga.status == SagaStatus.COMPLETED
    else:
        assert compensations == [COMPENSATIONS[COMMANDS.index(c)] for c in reversed(started)]
        assert saga.status == SagaStatus.COMPENSATED
        statuses = [s.status for s in saga.steps]
        assert statuses == [StepStatus.COMPENSATED] * len(started) + [StepStatus.PENDING] * (
            len(STEPS) - len(started)
        )
    return "reply" if reply_won and not cancelled else "cancel" if not applied else "both"


@pytest.mark.parametrize("position", [1, 2])
async def test_concurrent_cancel_and_reply_one_wins_and_the_audit_stays_clean(
    harness: Harness, position: int
) -> None:
    ops = Operations(harness.uow, harness.sagas)
    winners = []
    for first in ("cancel", "reply", None, None, None, None):
        saga_id, order_id = await running_at(harness, position)
        command = await harness.last_command(saga_id)
        reply = command.reply(step_reply(position, order_id))
        cancelled = await race(harness, ops, saga_id, reply, first)
        # The reply of the last step means the email went out; earlier, nothing was sent yet.
        email_sent = position == 2
        await settle(harness, saga_id, order_id, email_sent)
        winners.append(await check(harness, saga_id, reply, position, cancelled, email_sent))
    # The ordered runs cover both outcomes; at the last step only one of the two can act.
    assert winners[0] == "cancel"
    assert winners[1] == ("reply" if position == 2 else "both")
