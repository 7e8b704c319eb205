"""The audit's report, its command's exit status, and the checks on hand-made snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.domain.order_workflow import order_workflow
from orchestrator.domain.status import ORDER_STATUS_FOR as ORCHESTRATOR_ORDER_STATUS_FOR
from sagaops import audit
from sagaops.audit import AuditReport, Invariant, default_maildir, main
from sagaops.audit_checks import ORDER_STATUS_FOR, STEP_OWNERS, run_checks
from sagaops.audit_sources import (
    DLQ_SOURCE_TOPICS,
    DlqRecord,
    DlqScan,
    GatewayChargeRow,
    OrderRow,
    SagaRow,
    Snapshot,
    StepRow,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[4]
UNREACHABLE = "postgresql+asyncpg://orchestrator:s3cret@127.0.0.1:1/orchestrator"


def report_with(*invariants: Invariant) -> AuditReport:
    return AuditReport(list(invariants), context=["saga audit: 3 orders"])


# --- rendering ------------------------------------------------------------------------------------


def test_the_table_shows_each_invariant_with_its_count_and_first_offenders() -> None:
    many = Invariant(
        "stock_conservation", "stock adds up", [f"p{i}: off by {i}" for i in range(12)]
    )
    report = report_with(
        Invariant("orders_terminal", "orders end", [], notes=["2 orders too young"]),
        many,
        Invariant("dlq_only_deliberate", "dlq clean", skipped="no Kafka address given"),
    )

    lines = report.render().splitlines()

    assert lines[0] == "saga audit: 3 orders"
    rows = {line.split()[0]: line.split()[1] for line in lines if line[:1].isalpha()}
    assert rows["orders_terminal"] == "0"
    assert rows["stock_conservation"] == "12"
    assert rows["dlq_only_deliberate"] == "skipped"
    shown = [line.strip() for line in lines if line.strip().startswith("! ")]
    assert shown == [f"! p{i}: off by {i}" for i in range(10)]
    assert any(line.strip() == "... and 2 more" for line in lines)
    assert any(line.strip() == "note: 2 orders too young" for line in lines)
    assert any(line.strip() == "skipped: no Kafka address given" for line in lines)
    assert lines[-1] == (
        "RESULT: FAIL - 1 of 3 invariants violated (12 violations: stock_conservation)"
    )
    assert not report.ok


def test_an_offender_spread_over_lines_is_shown_on_one() -> None:
    report = report_with(Invariant("x", "d", ["t:0@1: dlq-reason=Traceback\n  File 'a'\n"]))

    assert "! t:0@1: dlq-reason=Traceback File 'a'" in report.render()
    assert report.invariant("x").offenders == ["t:0@1"]


def test_a_clean_report_says_ok_and_counts_what_was_checked() -> None:
    report = report_with(
        Invariant("a", "d"), Invariant("b", "d"), Invariant("c", "d", skipped="no Kafka")
    )

    assert report.ok
    assert report.render().splitlines()[-1] == "RESULT: OK - 2 of 3 invariants checked, all hold"


# --- the command's exit status --------------------------------------------------------------------


@pytest.mark.parametrize(("violations", "status"), [([], 0), (["o1: no payment"], 1)])
def test_main_exits_1_on_any_violation(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    violations: list[str],
    status: int,
) -> None:
    seen = {}

    async def fake_run_audit(targets: audit.AuditTargets, **_: object) -> AuditReport:
        seen["targets"] = targets
        return report_with(Invariant("confirmed_paid_once", "paid once", violations))

    monkeypatch.setattr(audit, "run_audit", fake_run_audit)

    with pytest.raises(SystemExit) as exit_:
        main(["--no-kafka", "--grace", "5", "--maildir", "/tmp/mail", "--topic-prefix", "x."])

    assert exit_.value.code == status
    assert "confirmed_paid_once" in capsys.readouterr().out
    targets = seen["targets"]
    assert (targets.kafka_bootstrap, targets.grace_s, targets.maildir, targets.topic_prefix) == (
        None,
        5.0,
        Path("/tmp/mail"),
        "x.",
    )


def test_main_takes_addresses_from_the_services_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = {}

    async def fake_run_audit(targets: audit.AuditTargets, **_: object) -> AuditReport:
        seen["targets"] = targets
        return report_with()

    monkeypatch.setattr(audit, "run_audit", fake_run_audit)
    for unset in (
        "ORCHESTRATOR_DATABASE_URL",
        "INVENTORY_DATABASE_URL",
        "NOTIFICATION_DATABASE_URL",
    ):
        monkeypatch.delenv(unset, raising=False)  # the defaults, whatever the shell exports
    monkeypatch.setenv("PAYMENT_DATABASE_URL", "postgresql+asyncpg://p:p@db:5432/pay")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "demo.")

    with pytest.raises(SystemExit):
        main(["--no-maildir"])

    targets = seen["targets"]
    assert targets.payment_url == "postgresql+asyncpg://p:p@db:5432/pay"
    assert targets.orchestrator_url.endswith("@127.0.0.1:5432/orchestrator")
    assert (targets.kafka_bootstrap, targets.topic_prefix, targets.maildir) == (
        "broker:9092",
        "demo.",
        None,
    )


def test_main_exits_2_when_a_database_cannot_be_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--orchestrator-db", UNREACHABLE, "--no-kafka", "--no-maildir"])

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "cannot read the orchestrator database at" in err
    assert "127.0.0.1:1/orchestrator" in err
    assert "s3cret" not in err


def test_the_default_maildir_is_found_from_any_folder_below_the_project(tmp_path: Path) -> None:
    mail = tmp_path / ".infra" / "data" / "mail"
    mail.mkdir(parents=True)
    (tmp_path / "services" / "x").mkdir(parents=True)

    assert default_maildir(tmp_path / "services" / "x") == mail
    assert default_maildir(tmp_path.parent) != mail


# --- the audit's copies of the system's definitions -----------------------------------------------


def test_order_status_mapping_is_the_orchestrators() -> None:
    assert {str(k): str(v) for k, v in ORCHESTRATOR_ORDER_STATUS_FOR.items()} == ORDER_STATUS_FOR


def test_step_owners_are_the_services_named_by_the_workflows_topics() -> None:
    owners = {}
    for step in order_workflow().steps:
        owners[step.name] = step.topic.split(".")[0]
        if step.compensation is not None:
            assert step.compensation.topic == step.topic  # one inbox holds both commands
    assert owners == STEP_OWNERS


def test_dlq_topics_are_the_infrastructures_topics() -> None:
    listed = [
        line.split("#")[0].strip()
        for line in (ROOT / "scripts" / "infra" / "topics.txt").read_text().splitlines()
    ]
    assert tuple(t for t in listed if t and not t.endswith(".dlq")) == DLQ_SOURCE_TOPICS


# --- checks on hand-made snapshots ----------------------------------------------------------------


def snapshot(**fields: object) -> Snapshot:
    snap = Snapshot(grace_s=60.0)
    for name, value in fields.items():
        setattr(snap, name, value)
    return snap


def violations(snap: Snapshot) -> dict[str, list[str]]:
    return {i.name: i.offenders for i in run_checks(snap) if i.violations}


def test_a_step_the_audit_does_not_know_is_looked_up_in_every_inbox() -> None:
    order = OrderRow("o1", "CONFIRMED", None, "USD", settled=True)
    snap = snapshot(
        orders={"o1": order},
        sagas={"s1": SagaRow("s1", "o1", "COMPLETED")},
        steps=[StepRow("s1", "ship_order", "SUCCEEDED", "m1")],
        inboxes={"inventory": set(), "payment": {"m1"}, "notification": set()},
    )
    checked = {i.name: i for i in run_checks(snap)}

    assert checked["inbox_complete"].ok
    snap.inboxes["payment"] = set()
    assert violations(snap)["inbox_complete"] == ["o1"]


def test_a_young_order_is_not_held_to_the_invariants_yet() -> None:
    snap = snapshot(orders={"o1": OrderRow("o1", "PENDING", None, "USD", settled=False)})

    assert violations(snap) == {}


def test_a_charge_without_metadata_is_linked_through_its_saga() -> None:
    charge = GatewayChargeRow("pi_2", "succeeded", 10, "s1:process_payment", None, None, True)
    first = GatewayChargeRow("pi_1", "succeeded", 10, "k1", None, "s1", True)
    snap = snapshot(
        orders={"o1": OrderRow("o1", "NEEDS_ATTENTION", 10, "USD", settled=True)},
        sagas={"s1": SagaRow("s1", "o1", "COMPENSATION_FAILED")},
        gateway_charges=[first, charge],
    )

    assert violations(snap) == {"never_charged_twice": ["o1"]}


def test_dlq_alerts_are_allowed_only_for_orders_needing_attention() -> None:
    def alert(offset: int, order_id: str) -> DlqRecord:
        headers = {"order-id": order_id, "dlq-error-code": "compensation_exhausted"}
        return DlqRecord("payment.commands.dlq", 0, offset, headers)

    snap = snapshot(
        orders={
            "o1": OrderRow("o1", "NEEDS_ATTENTION", 10, "USD", settled=True),
            "o2": OrderRow("o2", "CANCELLED", None, "USD", settled=True),
        },
        sagas={
            "s1": SagaRow("s1", "o1", "COMPENSATION_FAILED"),
            "s2": SagaRow("s2", "o2", "FAILED"),
        },
        dlq=DlqScan(
            records=[alert(0, "o1"), alert(1, "o2"), alert(2, "o3")],
            topics_read=["payment.commands.dlq"],
            incomplete=["payment.commands.dlq:1: read to 3 of 9"],
        ),
    )

    assert violations(snap) == {
        "dlq_only_deliberate": [
            "payment.commands.dlq:0@1",
            "payment.commands.dlq:0@2",
            "payment.commands.dlq:1",
        ]
    }
