"""``sagactl``: the on-call command line, a thin client of the orchestrator's admin API.

Exit codes: 0 ok, 1 refused or not found, 2 usage, 3 API unreachable (or unexpected answer).
The token comes from ``ADMIN_TOKEN``; the operator name (audited) from ``--operator`` or
``$USER``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3


class Unreachable(Exception):
    pass


class Refused(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sagactl", description="Operate sagas (admin API client).")
    p.add_argument("--url", default=os.environ.get("SAGACTL_URL", "http://127.0.0.1:8000"))
    p.add_argument("--operator", default=os.environ.get("USER", "sagactl"))
    p.add_argument("--timeout", type=float, default=10.0)
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list sagas, newest first")
    ls.add_argument("--status")
    ls.add_argument("--definition")
    ls.add_argument("--version", type=int)
    ls.add_argument("--min-age", type=float, dest="min_age_s", help="seconds")
    ls.add_argument("--step", type=int, dest="current_step")
    ls.add_argument("--order-id")
    ls.add_argument("--customer-id")
    ls.add_argument("--reason", help="text in the failure reason")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--cursor")
    ls.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="one saga (by saga id or order id) and its timeline")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")

    stuck = sub.add_parser("stuck", help="sagas overdue or running too long")
    stuck.add_argument("--grace", type=float, default=30.0, dest="grace_s")
    stuck.add_argument("--running-over", type=float, default=300.0, dest="running_over_s")
    stuck.add_argument("--json", action="store_true")

    cancel = sub.add_parser("cancel", help="cancel a RUNNING saga (it compensates)")
    cancel.add_argument("saga_id")
    cancel.add_argument("--reason", required=True)

    retry = sub.add_parser("retry", help="retry compensation of a COMPENSATION_FAILED saga")
    retry.add_argument("saga_id")
    retry.add_argument("--reason")

    dlq = sub.add_parser("dlq", help="dead-letter topics: list, show, replay, discard")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True)
    dls = dsub.add_parser("list", help="counts per DLQ topic, or one topic's records")
    dls.add_argument("topic", nargs="?", help="a DLQ topic (or its source topic)")
    dls.add_argument("--reason", help="text in the reason or error code")
    dls.add_argument("--state", choices=["unreplayed", "replayed", "discarded"])
    dls.add_argument("--limit", type=int, default=50)
    dls.add_argument("--cursor")
    dls.add_argument("--json", action="store_true")
    dsh = dsub.add_parser("show", help="one record: <topic>/<partition>/<offset>")
    dsh.add_argument("ref")
    dsh.add_argument("--json", action="store_true")
    drp = dsub.add_parser(
        "replay", help="replay one record (<topic>/<partition>/<offset>) or a filtered set"
    )
    drp.add_argument("ref", nargs="?", help="one record; omit it to replay a filtered set")
    drp.add_argument("--topic", help="filter: a DLQ topic (or its source topic)")
    drp.add_argument("--match", dest="match_reason", help="filter: text in the reason")
    drp.add_argument("--partition", type=int)
    drp.add_argument("--min-offset", type=int)
    drp.add_argument("--max-offset", type=int)
    drp.add_argument("--batch", type=int, default=100, help="records per API call")
    drp.add_argument("--reason", help="why (audited)")
    dds = dsub.add_parser("discard", help="mark one record as dealt with, never replayed")
    dds.add_argument("ref")
    dds.add_argument("--reason", required=True)
    return p


def _ref(text: str) -> tuple[str, int, int]:
    topic, _, rest = text.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    try:
        return topic, int(partition), int(rest)
    except ValueError:
        raise Refused(f"not a record reference <topic>/<partition>/<offset>: {text!r}") from None


def _dlq_row(r: dict[str, Any]) -> str:
    count = f" replay#{r['replay_count']}" if r["replay_count"] else ""
    return (
        f"{r['ref']}  {r['state']:<10} {r['error_code'] or '?'}{count}  "
        f"{r['message_type'] or '-'}  {(r['reason'] or '').splitlines()[0][:100] if r['reason'] else ''}"
    )


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def run_dlq(args: argparse.Namespace, client: httpx.Client) -> int:
    out = sys.stdout
    if args.dlq_command == "list" and args.topic is None:
        summary = call(client, "GET", "/admin/dlq")
        if args.json:
            _dump(summary)
            return OK
        out.write(
            f"{'topic':<40} {'records':>8} {'replayed':>9} {'discarded':>10} {'unreplayed':>11}\n"
        )
        for t in summary["topics"]:
            out.write(
                f"{t['topic']:<40} {t['records']:>8} {t['replayed']:>9} {t['discarded']:>10} "
                f"{t['unreplayed']:>11}\n"
            )
    elif args.dlq_command == "list":
        keys = ("reason", "state", "limit", "cursor")
        params = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
        page = call(client, "GET", f"/admin/dlq/{args.topic}", params=params)
        if args.json:
            _dump(page)
            return OK
        for r in page["records"]:
            out.write(_dlq_row(r) + "\n")
        if page["next_cursor"]:
            out.write(f"(more: --cursor {page['next_cursor']})\n")
    elif args.dlq_command == "show":
        topic, partition, offset = _ref(args.ref)
        record = call(client, "GET", f"/admin/dlq/{topic}/{partition}/{offset}")
        if args.json:
            _dump(record)
            return OK
        out.write(_dlq_row(record) + "\n\n")
        for name, value in record["headers"].items():
            out.write(f"  {name}: {value}\n")
        d = record["disposition"]
        if d:
            out.write(f"\n{d['disposition']} by {d['operator']} at {d['at']}: {d['reason'] or ''}")
            out.write(f" -> {d['replayed_to']}\n" if d["replayed_to"] else "\n")
        out.write(f"\nvalue: {record['value']}\n")
    elif args.dlq_command == "replay" and args.ref is not None:
        topic, partition, offset = _ref(args.ref)
        body = {
            "record": {"topic": topic, "partition": partition, "offset": offset},
            "reason": args.reason,
        }
        result = call(client, "POST", "/admin/dlq/replay", body=body)
        for r in result["replayed"]:
            out.write(f"replayed {r['ref']} -> {r['replayed_to']}\n")
    elif args.dlq_command == "replay":
        if not (args.topic or args.match_reason):
            raise Refused("give a record, or a filter (--topic and/or --match)")
        flt = {
            "topic": args.topic,
            "reason": args.match_reason,
            "partition": args.partition,
            "min_offset": args.min_offset,
            "max_offset": args.max_offset,
        }
        cursor, replayed, skipped = None, 0, 0
        while True:  # a batch per call, progress after each
            body = {"filter": flt, "reason": args.reason, "limit": args.batch, "cursor": cursor}
            result = call(client, "POST", "/admin/dlq/replay", body=body)
            replayed += len(result["replayed"])
            skipped += len(result["skipped"])
            for r in result["skipped"]:
                print(f"skipped {r['ref']}: {r['refused']}", file=sys.stderr)
            cursor = result["next_cursor"]
            print(
                f"replayed {replayed}, skipped {skipped}{' ...' if cursor else ''}", file=sys.stderr
            )
            if cursor is None:
                break
        out.write(f"replayed {replayed}, skipped {skipped}\n")
    elif args.dlq_command == "discard":
        topic, partition, offset = _ref(args.ref)
        record = call(
            client,
            "POST",
            f"/admin/dlq/{topic}/{partition}/{offset}/discard",
            body={"reason": args.reason},
        )
        out.write(f"discarded {record['ref']}\n")
    return OK


def call(
    client: httpx.Client, method: str, path: str, *, params: Any = None, body: Any = None
) -> Any:
    try:
        response = client.request(method, path, params=params, json=body)
    except httpx.HTTPError as exc:
        raise Unreachable(f"cannot reach {client.base_url}: {exc}") from exc
    if response.status_code in (404, 409, 422):
        data = response.json()
        raise Refused(f"{data.get('error')}: {data.get('message')}")
    if response.status_code == 401:
        raise Refused("unauthorised: set ADMIN_TOKEN")
    if response.status_code == 503:
        raise Unreachable(f"unavailable: {response.json().get('message')}")
    if response.status_code >= 300:
        raise Unreachable(f"unexpected answer {response.status_code}: {response.text[:200]}")
    return response.json()


def _row(s: dict[str, Any]) -> str:
    return (
        f"{s['saga_id']}  {s['status']:<20} step {s['current_step']:<2} "
        f"{s['definition']['name']}@{s['definition']['version']}  {s['created_at']}  "
        f"{s.get('failure_reason') or ''}"
    )


def run(args: argparse.Namespace, client: httpx.Client) -> int:
    out = sys.stdout
    if args.command == "dlq":
        return run_dlq(args, client)
    if args.command == "list":
        keys = [
            *("status", "definition", "version", "min_age_s", "current_step", "order_id"),
            *("customer_id", "reason", "limit", "cursor"),
        ]
        params = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
        page = call(client, "GET", "/admin/sagas", params=params)
        if args.json:
            json.dump(page, out, indent=2)
            out.write("\n")
        else:
            for s in page["sagas"]:
                out.write(_row(s) + "\n")
            if page["next_cursor"]:
                out.write(f"(more: --cursor {page['next_cursor']})\n")
    elif args.command == "show":
        saga = call(client, "GET", f"/sagas/{args.id}")
        if args.json:
            json.dump(saga, out, indent=2)
            out.write("\n")
        else:
            out.write(_row(saga) + f"\norder {saga['order_id']}\n\n")
            out.write(f"{'at':<32} {'event':<22} {'step':<22} {'status':<34} cause\n")
            for h in saga["history"]:
                change = f"{h['from_status'] or ''} -> {h['to_status'] or ''}"
                out.write(
                    f"{h['at']:<32} {h['event']:<22} {h['step'] or '':<22} {change:<34} "
                    f"{h['cause'] or ''}{' (' + h['detail'] + ')' if h['detail'] else ''}\n"
                )
    elif args.command == "stuck":
        params = {"grace_s": args.grace_s, "running_over_s": args.running_over_s}
        found = call(client, "GET", "/admin/sagas/stuck", params=params)
        if args.json:
            json.dump(found, out, indent=2)
            out.write("\n")
        else:
            for item in found["stuck"]:
                out.write(f"{_row(item['saga'])}  [{item['why']}]\n")
    elif args.command == "cancel":
        saga = call(
            client, "POST", f"/admin/sagas/{args.saga_id}/cancel", body={"reason": args.reason}
        )
        out.write(f"cancelled: {_row(saga)}\n")
    elif args.command == "retry":
        saga = call(
            client, "POST", f"/admin/sagas/{args.saga_id}/retry", body={"reason": args.reason}
        )
        out.write(f"retrying: {_row(saga)}\n")
    return OK


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # exits 2 on bad usage
    token = os.environ.get("ADMIN_TOKEN")
    if not token:
        print("sagactl: set ADMIN_TOKEN", file=sys.stderr)
        return USAGE
    headers = {"Authorization": f"Bearer {token}", "X-Operator": args.operator}
    with httpx.Client(base_url=args.url, headers=headers, timeout=args.timeout) as client:
        try:
            return run(args, client)
        except Refused as exc:
            print(f"sagactl: {exc}", file=sys.stderr)
            return REFUSED
        except Unreachable as exc:
            print(f"sagactl: {exc}", file=sys.stderr)
            return UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
