"""``make audit`` / ``saga-audit``: read every service's database (and the mailbox and the DLQ
topics) and check the system's invariants, printing each with its violations and offenders.

Exit status: 0 every invariant holds, 1 at least one violation, 2 a database (or Kafka) could
not be read. Usable against any deployment: the addresses come from the same environment
variables (or ``.env``) as the services', or from the command line.

    from sagaops.audit import AuditTargets, run_audit
    report = await run_audit(AuditTargets(orchestrator_url=..., ...))
    print(report.render()); assert report.ok
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from sagakit.settings import DatabaseTlsSettings, KafkaSettings, settings_error_line
from sagaops.audit_checks import CHECKS, Invariant, run_checks
from sagaops.audit_sources import AuditTargets, AuditUnavailable, Progress, Snapshot, load_snapshot

__all__ = [
    "CHECKS",
    "AuditReport",
    "AuditTargets",
    "AuditUnavailable",
    "Invariant",
    "main",
    "run_audit",
]

EXIT_OK, EXIT_VIOLATIONS, EXIT_UNAVAILABLE = 0, 1, 2


@dataclass
class AuditReport:
    invariants: list[Invariant]
    context: list[str] = field(default_factory=list)  # what was read, shown above the table

    @property
    def ok(self) -> bool:
        return all(inv.ok for inv in self.invariants)

    def invariant(self, name: str) -> Invariant:
        for inv in self.invariants:
            if inv.name == name:
                return inv
        raise KeyError(name)

    def render(self, limit: int = 10) -> str:
        """A table: invariant, violation count, description, then the first ``limit`` offenders
        (and notes) under each row."""
        width = max([len("invariant"), *(len(i.name) for i in self.invariants)])
        indent = " " * (width + 14)
        lines = [*self.context, ""] if self.context else []
        lines.append(f"{'invariant':<{width}}  {'violations':>10}  description / offenders")
        lines.append(f"{'-' * width}  {'-' * 10}  {'-' * 40}")
        for inv in self.invariants:
            count = "skipped" if inv.skipped else str(len(inv.violations))
            lines.append(f"{inv.name:<{width}}  {count:>10}  {inv.description}")
            lines.extend(f"{indent}  ! {_one_line(v)}" for v in inv.violations[:limit])
            if len(inv.violations) > limit:
                lines.append(f"{indent}  ... and {len(inv.violations) - limit} more")
            if inv.skipped:
                lines.append(f"{indent}  skipped: {inv.skipped}")
            lines.extend(f"{indent}  note: {_one_line(note)}" for note in inv.notes)
        lines.append("")
        failed = [i for i in self.invariants if not i.ok]
        if failed:
            total = sum(len(i.violations) for i in failed)
            lines.append(
                f"RESULT: FAIL - {len(failed)} of {len(self.invariants)} invariants violated"
                f" ({total} violation{'s' if total != 1 else ''}: "
                f"{', '.join(i.name for i in failed)})"
            )
        else:
            checked = sum(1 for i in self.invariants if not i.skipped)
            lines.append(
                f"RESULT: OK - {checked} of {len(self.invariants)} invariants checked, all hold"
            )
        return "\n".join(lines)


def _one_line(text: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


async def run_audit(targets: AuditTargets, *, progress: Progress | None = None) -> AuditReport:
    """Read everything once, then check every invariant. Raises ``AuditUnavailable`` when a
    database (or, with ``kafka_bootstrap``, the broker) cannot be read."""
    started = time.monotonic()
    snap = await load_snapshot(targets, progress)
    invariants = run_checks(snap)
    return AuditReport(invariants, _context(snap, time.monotonic() - started))


def _context(snap: Snapshot, elapsed: float) -> list[str]:
    statuses = Counter(o.status for o in snap.orders.values())
    settled = sum(1 for o in snap.orders.values() if o.settled)
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    read = [
        f"{len(snap.orders)} orders ({settled} older than the {snap.grace_s:g}s grace period"
        + (f"; {by_status}" if by_status else "")
        + ")",
        f"{len(snap.products)} products, {len(snap.payments)} payments,"
        f" {len(snap.gateway_charges)} gateway charges, {len(snap.notifications)} notifications",
        "mailbox: "
        + ("not read" if snap.mails is None else f"{sum(snap.mails.values())} confirmations"),
        "DLQ: "
        + ("not read" if snap.dlq is None else f"{len(snap.dlq.records)} records")
        + f"; read in {elapsed:.1f}s",
    ]
    return [f"saga audit: {read[0]}", *(f"            {line}" for line in read[1:])]


# --- the command ----------------------------------------------------------------------------------


class AuditSettings(KafkaSettings, DatabaseTlsSettings):
    """The services' own variables (environment, then ``.env``), with the local defaults: the
    databases, the broker, and how to reach them (Kafka SASL/TLS, PostgreSQL TLS)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    orchestrator_database_url: str = Field(
        default="postgresql+asyncpg://orchestrator:orchestrator@127.0.0.1:5432/orchestrator",
        validation_alias="ORCHESTRATOR_DATABASE_URL",
    )
    inventory_database_url: str = Field(
        default="postgresql+asyncpg://inventory:inventory@127.0.0.1:5432/inventory",
        validation_alias="INVENTORY_DATABASE_URL",
    )
    payment_database_url: str = Field(
        default="postgresql+asyncpg://payment:payment@127.0.0.1:5432/payment",
        validation_alias="PAYMENT_DATABASE_URL",
    )
    notification_database_url: str = Field(
        default="postgresql+asyncpg://notification:notification@127.0.0.1:5432/notification",
        validation_alias="NOTIFICATION_DATABASE_URL",
    )
    kafka_topic_prefix: str = Field(default="", validation_alias="KAFKA_TOPIC_PREFIX")


def default_maildir(start: Path | None = None) -> Path | None:
    """The local SMTP server's folder, ``.infra/data/mail`` in this directory or a parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".infra" / "data" / "mail"
        if candidate.is_dir():
            return candidate
    return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    try:
        env = AuditSettings()
    except ValidationError as exc:
        print(f"saga-audit: {settings_error_line(exc)}", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE) from None
    p = argparse.ArgumentParser(
        prog="saga-audit",
        description="Check the saga system's invariants across every service's database; "
        "exit 1 on any violation, 2 if a database cannot be read.",
    )
    p.add_argument("--orchestrator-db", default=env.orchestrator_database_url, metavar="URL")
    p.add_argument("--inventory-db", default=env.inventory_database_url, metavar="URL")
    p.add_argument("--payment-db", default=env.payment_database_url, metavar="URL")
    p.add_argument("--notification-db", default=env.notification_database_url, metavar="URL")
    p.add_argument(
        "--kafka",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read the DLQ topics (default: yes; --no-kafka skips the DLQ check)",
    )
    p.add_argument("--bootstrap", default=env.kafka_bootstrap_servers, help="Kafka address(es)")
    p.add_argument("--topic-prefix", default=env.kafka_topic_prefix)
    p.add_argument(
        "--maildir",
        type=Path,
        default=default_maildir(),
        help="the SMTP server's .eml folder (default: .infra/data/mail if found)",
    )
    p.add_argument(
        "--no-maildir", dest="maildir", action="store_const", const=None, help="skip the mailbox"
    )
    p.add_argument(
        "--grace",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="orders younger than this may still be in flight (default 60)",
    )
    p.add_argument("--poison-header", default="x-chaos-poison")
    p.add_argument("--offenders", type=int, default=10, help="offenders shown per invariant")
    p.set_defaults(kafka_security=env.kafka_security, database_tls=env.database_tls)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    targets = AuditTargets(
        orchestrator_url=args.orchestrator_db,
        inventory_url=args.inventory_db,
        payment_url=args.payment_db,
        notification_url=args.notification_db,
        kafka_bootstrap=args.bootstrap if args.kafka else None,
        topic_prefix=args.topic_prefix,
        maildir=args.maildir,
        grace_s=args.grace,
        deliberate_poison_header=args.poison_header,
        kafka_security=args.kafka_security,
        database_tls=args.database_tls,
    )

    def progress(message: str) -> None:
        print(f"saga-audit: {message}", file=sys.stderr, flush=True)

    try:
        report = asyncio.run(run_audit(targets, progress=progress))
    except AuditUnavailable as exc:
        print(f"saga-audit: {exc}", file=sys.stderr)
        print("saga-audit: nothing was checked (exit 2)", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE) from None
    print(report.render(limit=args.offenders))
    raise SystemExit(EXIT_OK if report.ok else EXIT_VIOLATIONS)


if __name__ == "__main__":
    main()
