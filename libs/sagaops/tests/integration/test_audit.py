"""The invariant audit on real databases: consistent data passes; each way of breaking an
invariant is reported by that invariant, naming the offender, and by no other."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from sagakit.testing.kafka import create_topics, unique_name
from sagaops.audit import AuditReport, AuditUnavailable, run_audit
from sagaops.audit_sources import DLQ_SOURCE_TOPICS

pytestmark = pytest.mark.integration


def violated(report: AuditReport) -> dict[str, list[str]]:
    return {i.name: i.offenders for i in report.invariants if i.violations}


async def audit(shop, **overrides) -> AuditReport:
    return await run_audit(shop.targets(**overrides))


async def test_consistent_data_breaks_no_invariant(shop) -> None:
    orders = await shop.consistent()

    report = await audit(shop)

    assert violated(report) == {}, report.render()
    assert report.ok
    held = report.invariant("no_stock_held_by_cancelled").notes
    assert any(orders["needs_attention"].order_id in note for note in held)
    assert any("1 orders younger than 60s" in n for n in report.invariant("orders_terminal").notes)
    assert report.invariant("dlq_only_deliberate").skipped == "no Kafka address given"
    assert "RESULT: OK" in report.render()


async def test_an_empty_system_breaks_no_invariant(shop) -> None:
    report = await audit(shop, maildir=None)

    assert report.ok, report.render()


# --- 1. orders_terminal ---------------------------------------------------------------------------


async def test_an_order_still_pending_after_the_grace_period(shop) -> None:
    await shop.consistent()
    stuck = await shop.order("in_flight", settled=True)

    report = await audit(shop)

    assert violated(report) == {"orders_terminal": [stuck.order_id]}


async def test_an_order_whose_saga_disagrees(shop) -> None:
    orders = await shop.consistent()
    confirmed = orders["confirmed"]
    await shop.sql(
        "orchestrator",
        "UPDATE sagas SET status = 'COMPENSATED' WHERE saga_id = :s",
        s=confirmed.saga_id,
    )

    report = await audit(shop)

    assert violated(report) == {"orders_terminal": [confirmed.order_id]}
    assert (
        "order CONFIRMED but saga COMPENSATED" in report.invariant("orders_terminal").violations[0]
    )


async def test_an_order_without_a_saga(shop) -> None:
    orders = await shop.consistent()
    order = orders["out_of_stock"]
    await shop.sql("orchestrator", "DELETE FROM saga_steps WHERE saga_id = :s", s=order.saga_id)
    await shop.sql("orchestrator", "DELETE FROM sagas WHERE saga_id = :s", s=order.saga_id)

    report = await audit(shop)

    assert violated(report) == {"orders_terminal": [order.order_id]}


# --- 2. stock_conservation ------------------------------------------------------------------------


async def test_reserved_stock_that_no_reservation_holds(shop) -> None:
    await shop.consistent()
    await shop.move_stock("gadget", 1)  # available + reserved still equal initial_stock

    report = await audit(shop)

    assert violated(report) == {"stock_conservation": ["gadget"]}
    assert "reserved 2 but held reservations hold 1" in report.render()


async def test_a_confirmed_order_whose_stock_was_released(shop) -> None:
    orders = await shop.consistent()
    confirmed = orders["confirmed"]
    await shop.sql(
        "inventory",
        "UPDATE reservations SET status = 'released', released_at = now() WHERE order_id = :o",
        o=confirmed.order_id,
    )
    await shop.move_stock("widget", -2)  # the books still balance: only the order is wrong

    report = await audit(shop)

    assert violated(report) == {"stock_conservation": [confirmed.order_id]}


# --- 3. no_stock_held_by_cancelled ----------------------------------------------------------------


async def test_a_cancelled_order_still_holding_stock(shop) -> None:
    orders = await shop.consistent()
    declined = orders["declined"]
    await shop.sql(
        "inventory",
        "UPDATE reservations SET status = 'held', released_at = NULL WHERE order_id = :o",
        o=declined.order_id,
    )
    await shop.move_stock("widget", 1)

    report = await audit(shop)

    assert violated(report) == {"no_stock_held_by_cancelled": [declined.order_id]}


async def test_stock_held_for_an_order_the_orchestrator_does_not_know(shop) -> None:
    await shop.consistent()
    stranger, newcomer = str(uuid.uuid4()), str(uuid.uuid4())
    for order_id, age in ((stranger, 3600), (newcomer, 0)):
        await shop.sql(
            "inventory",
            "INSERT INTO reservations (order_id, status, total, currency, created_at) VALUES"
            " (:o, 'held', 1999, 'USD', now() - make_interval(secs => :age))",
            o=order_id,
            age=float(age),
        )
        await shop.sql(
            "inventory",
            "INSERT INTO reservation_lines VALUES (:o, 'widget', 1, 1999, 1999)",
            o=order_id,
        )
        await shop.move_stock("widget", 1)

    report = await audit(shop)

    # The young one may be an order the orchestrator has not committed yet.
    assert violated(report) == {"no_stock_held_by_cancelled": [stranger]}


# --- 4. confirmed_paid_once -----------------------------------------------------------------------


async def test_a_confirmed_order_charged_a_different_amount(shop) -> None:
    orders = await shop.consistent()
    confirmed = orders["confirmed"]
    await shop.sql(
        "payment",
        "UPDATE payments SET amount = amount + 1 WHERE order_id = :o",
        o=confirmed.order_id,
    )

    report = await audit(shop)

    assert violated(report) == {"confirmed_paid_once": [confirmed.order_id]}
    assert "charged 3999 but reserved total 3998" in report.render()


async def test_a_confirmed_order_refunded(shop) -> None:
    orders = await shop.consistent()
    confirmed = orders["confirmed_mixed"]
    await shop.refund(confirmed, confirmed.total)

    report = await audit(shop)

    assert violated(report) == {"confirmed_paid_once": [confirmed.order_id]}


async def test_a_confirmed_order_without_a_payment(shop) -> None:
    orders = await shop.consistent()
    confirmed = orders["confirmed"]
    await shop.sql("payment", "DELETE FROM payments WHERE order_id = :o", o=confirmed.order_id)

    report = await audit(shop)

    assert violated(report) == {"confirmed_paid_once": [confirmed.order_id]}


# --- 5. cancelled_not_charged ---------------------------------------------------------------------


async def test_a_cancelled_order_charged_and_never_refunded(shop) -> None:
    orders = await shop.consistent()
    rejected = orders["email_rejected"]
    await shop.sql("payment", "DELETE FROM refunds WHERE order_id = :o", o=rejected.order_id)

    report = await audit(shop)

    assert violated(report) == {"cancelled_not_charged": [rejected.order_id]}
    assert "charged 1999, never refunded" in report.render()


async def test_a_cancelled_order_the_gateway_charged_behind_a_decline(shop) -> None:
    orders = await shop.consistent()
    declined = orders["declined"]
    # The payment service recorded a decline, the gateway kept the money.
    await shop.sql(
        "payment",
        "UPDATE simulated_stripe.charges SET status = 'succeeded', decline_code = NULL"
        " WHERE payment_id = :p",
        p=declined.payment_id,
    )

    report = await audit(shop)

    assert violated(report) == {"cancelled_not_charged": [declined.order_id]}


# --- 6. never_charged_twice -----------------------------------------------------------------------


async def test_an_order_charged_twice_at_the_gateway(shop) -> None:
    orders = await shop.consistent()
    confirmed = orders["confirmed"]
    # A second charge under another key, found through the saga id in its key alone.
    await shop.charge(confirmed, key=f"{confirmed.saga_id}:process_payment:again", metadata={})

    report = await audit(shop)

    assert violated(report) == {"never_charged_twice": [confirmed.order_id]}
    assert "2 succeeded charges" in report.render()


async def test_more_refunded_than_charged(shop) -> None:
    orders = await shop.consistent()
    rejected = orders["email_rejected"]
    await shop.gateway_refund(rejected.payment_id, 1)

    report = await audit(shop)

    assert violated(report) == {"never_charged_twice": [rejected.order_id]}


async def test_a_charge_for_no_known_order(shop) -> None:
    orders = await shop.consistent()
    ghost_id = str(uuid.uuid4())
    await shop.charge(replace(orders["confirmed"], order_id=ghost_id, saga_id=str(uuid.uuid4())))

    report = await audit(shop)

    assert violated(report) == {"never_charged_twice": [ghost_id]}


# --- 7. one_email_per_confirmed_order -------------------------------------------------------------


@pytest.mark.parametrize(
    "breakage", ["no notification", "notification not sent", "no email", "two emails"]
)
async def test_a_confirmed_order_without_exactly_one_email(shop, breakage: str) -> None:
    orders = await shop.consistent()
    confirmed = orders["confirmed"]
    if breakage == "no notification":
        await shop.sql(
            "notification", "DELETE FROM notifications WHERE order_id = :o", o=confirmed.order_id
        )
    elif breakage == "notification not sent":
        await shop.sql(
            "notification",
            "UPDATE notifications SET status = 'sending' WHERE order_id = :o",
            o=confirmed.order_id,
        )
    elif breakage == "no email":
        for path in shop.maildir.glob("*.eml"):
            if confirmed.order_id in path.read_text(errors="replace"):
                path.unlink()
    else:
        shop.write_email(confirmed)

    report = await audit(shop)

    assert violated(report) == {"one_email_per_confirmed_order": [confirmed.order_id]}


@pytest.mark.parametrize("breakage", ["notification sent", "email in the mailbox"])
async def test_a_cancelled_order_with_an_email(shop, breakage: str) -> None:
    orders = await shop.consistent()
    rejected = orders["email_rejected"]
    if breakage == "notification sent":
        await shop.sql(
            "notification",
            "UPDATE notifications SET status = 'sent' WHERE order_id = :o",
            o=rejected.order_id,
        )
    else:
        shop.write_email(rejected)

    report = await audit(shop)

    assert violated(report) == {"one_email_per_confirmed_order": [rejected.order_id]}


async def test_without_a_maildir_only_the_records_are_checked(shop) -> None:
    orders = await shop.consistent()
    shop.write_email(orders["confirmed"])  # a duplicate nobody looks at

    report = await audit(shop, maildir=None)

    assert report.ok, report.render()
    assert any(
        "mailbox not checked" in n for n in report.invariant("one_email_per_confirmed_order").notes
    )


# --- 8. outbox_drained ----------------------------------------------------------------------------


async def test_an_outbox_left_undrained(shop) -> None:
    await shop.consistent()
    for age in (3600.0, 0.0):
        await shop.sql(
            "payment",
            "INSERT INTO outbox (message_id, message_type, topic, key, headers, value, created_at)"
            " VALUES (:m, 'PaymentProcessed', 'payment.replies', NULL, '[]', '\\x7b7d'::bytea,"
            " now() - make_interval(secs => :age))",
            m=str(uuid.uuid4()),
            age=age,
        )

    report = await audit(shop)

    assert violated(report) == {"outbox_drained": ["payment"]}
    assert "payment: 1 outbox rows older than 60s (2 in all)" in report.render()


async def test_young_outbox_rows_are_only_a_note(shop) -> None:
    await shop.consistent()
    await shop.sql(
        "inventory",
        "INSERT INTO outbox (message_id, message_type, topic, headers, value)"
        " VALUES (:m, 'InventoryReserved', 'inventory.replies', '[]', '\\x7b7d'::bytea)",
        m=str(uuid.uuid4()),
    )

    report = await audit(shop)

    assert report.ok, report.render()
    assert report.invariant("outbox_drained").notes == [
        "inventory: 1 young outbox rows still being published"
    ]


# --- 9. inbox_complete ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "step", "owner"),
    [
        ("confirmed", "process_payment", "payment"),
        ("email_rejected", "send_notification", "notification"),
        ("declined", "reserve_inventory", "inventory"),  # its compensation's command
    ],
)
async def test_an_applied_step_whose_command_was_never_consumed(
    shop, kind: str, step: str, owner: str
) -> None:
    orders = await shop.consistent()
    order = orders[kind]
    await shop.sql(owner, "DELETE FROM inbox WHERE message_id = :m", m=order.commands[step])

    report = await audit(shop)

    assert violated(report) == {"inbox_complete": [order.order_id]}
    assert f"not in {owner}'s inbox" in report.render()


# --- 10. dlq_only_deliberate ----------------------------------------------------------------------


async def test_the_dlq_holds_only_deliberate_poison_and_alerts(shop, kafka_bootstrap: str) -> None:
    orders = await shop.consistent()
    prefix = unique_name("audit") + "."
    # Two of the DLQ topics exist; the others are reported as not found, never created.
    await create_topics(
        kafka_bootstrap, [f"{prefix}payment.commands.dlq", f"{prefix}inventory.replies.dlq"], 2
    )

    def alert_for(order_id: str) -> list[tuple[str, bytes]]:
        return [
            ("message-type", b"RefundPayment"),
            ("order-id", order_id.encode()),
            ("dlq-error-code", b"compensation_exhausted"),
            ("dlq-reason", b"process_payment:compensate failed 5 times"),
        ]

    records = [
        (
            f"{prefix}payment.commands.dlq",
            [("X-Chaos-Poison", b"1"), ("dlq-error-code", b"undecodable")],
        ),
        (f"{prefix}payment.commands.dlq", alert_for(orders["needs_attention"].order_id)),
        (f"{prefix}payment.commands.dlq", alert_for(orders["confirmed"].order_id)),
        (
            f"{prefix}inventory.replies.dlq",
            [("dlq-error-code", b"handler_failed"), ("dlq-reason", b"KeyError:\n  'x'")],
        ),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        offsets = []
        for topic, headers in records:
            meta = await producer.send_and_wait(topic, b"{}", partition=0, headers=headers)
            offsets.append(f"{topic}:0@{meta.offset}")
    finally:
        await producer.stop()

    report = await audit(
        shop, kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, dlq_timeout_s=20
    )

    dlq = report.invariant("dlq_only_deliberate")
    # Sorted by topic, partition and offset.
    assert violated(report) == {"dlq_only_deliberate": [offsets[3], offsets[2]]}
    assert "dlq-error-code=handler_failed dlq-reason=KeyError: 'x'" in dlq.violations[0]
    assert "which is CONFIRMED" in dlq.violations[1]
    assert "4 DLQ records in 2 topics: 1 deliberate poison, 1 alerts" in dlq.notes[0]
    assert len(DLQ_SOURCE_TOPICS) - 2 == dlq.notes[1].count(".dlq")


async def test_an_empty_dlq_topic_is_read_without_waiting(shop, kafka_bootstrap: str) -> None:
    await shop.consistent()
    prefix = unique_name("audit") + "."
    await create_topics(kafka_bootstrap, [f"{prefix}{t}.dlq" for t in DLQ_SOURCE_TOPICS], 3)

    report = await audit(
        shop, kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, dlq_timeout_s=20
    )

    assert report.ok, report.render()
    assert report.invariant("dlq_only_deliberate").notes == [
        "0 DLQ records in 8 topics: 0 deliberate poison, 0 alerts of NEEDS_ATTENTION orders"
    ]


# --- the mailbox parser ---------------------------------------------------------------------------


async def test_mails_are_counted_per_order_from_their_message_id(shop) -> None:
    from sagaops.audit_sources import count_mails

    await shop.product("widget", 10)
    first = await shop.order("confirmed", email=False)
    second = await shop.order("confirmed", email=False)
    shop.write_email(first)
    shop.write_email(second)
    # No Message-ID of ours: the body's "Order: <id>" line counts.
    (shop.maildir / "legacy.eml").write_bytes(
        f"Subject: hi\r\n\r\nOrder: {second.order_id}\r\n".encode()
    )
    # A folded Message-ID header is unfolded by the header parser.
    third = str(uuid.uuid4())
    (shop.maildir / "folded.eml").write_bytes(
        f"Subject: hi\r\nMessage-ID:\r\n <order-{third}@saga-shop.local>\r\n\r\nhi".encode()
    )
    (shop.maildir / "notes.txt").write_text(first.order_id)
    # Named by the local SMTP server after our Message-ID: counted by its name, never opened
    # (this one's content names no order at all).
    fourth = str(uuid.uuid4())
    (shop.maildir / f"1765000000000000000-order-{fourth}_saga-shop_local-0a1b2c3d.eml").write_bytes(
        b"Subject: unreadable\r\n\r\n"
    )

    counts = count_mails(shop.maildir)

    assert counts == {first.order_id: 1, second.order_id: 2, third: 1, fourth: 1}


def test_the_local_smtp_servers_file_names_are_the_ones_counted_by_name(tmp_path) -> None:
    """The name pattern the audit trusts is the one scripts/infra/smtp_server.py writes."""
    import importlib.util
    import sys

    from notification.domain.confirmation import message_id_for
    from sagaops.audit_sources import count_mails

    path = Path(__file__).resolve().parents[4] / "scripts" / "infra" / "smtp_server.py"
    spec = importlib.util.spec_from_file_location("smtp_server_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    order_id = uuid.uuid4()
    content = f"Message-ID: {message_id_for(order_id)}\r\n\r\nhi".encode()

    stored = module.Mailbox(tmp_path).store(["a@example.com"], content)
    stored.write_bytes(b"")  # emptied: only its name can say which order it confirms

    assert count_mails(tmp_path) == {str(order_id): 1}


async def test_an_unreachable_broker_makes_the_audit_unavailable(shop) -> None:
    await shop.consistent()

    with pytest.raises(
        AuditUnavailable, match=r"cannot read the DLQ topics from Kafka at 127\.0\.0\.1:1"
    ):
        await audit(shop, kafka_bootstrap="127.0.0.1:1")


async def test_a_database_without_the_services_tables_makes_the_audit_unavailable(
    shop, infra
) -> None:
    with pytest.raises(
        AuditUnavailable, match=r'the payment database at .*"payments" does not exist'
    ):
        await audit(shop, payment_url=infra.database_url("inventory"))  # no payments there
