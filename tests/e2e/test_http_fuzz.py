"""Schemathesis against each service's own OpenAPI, on the four real processes.

For every operation of every service it sends FUZZ_EXAMPLES requests generated from the schema
(valid ones, then invalid ones) and checks that none answers 5xx and that every answer's
status, content type and body are the ones the OpenAPI declares.
Invalid requests must change nothing: the orders and products tables have as many rows after the
invalid ones as before. The admin routes are fuzzed with the admin token, the catalog writes too.

Then statefully: schemathesis follows the OpenAPI links each service declares
(``sagakit.http.links``), e.g. ``POST /orders`` -> ``GET /orders/{order_id}`` -> ``GET /sagas/{id}``
-> cancel -> retry, ``POST /products`` -> restock -> ``GET /products/{id}``, with real ids from real
answers, mostly valid requests and some invalid ones. Besides the same checks: a link followed
from a successful answer never leads to a 404 (nothing here is ever deleted), and the rows
created are exactly the creations that were answered 201/202 (not replayed). Valid orders buy
from a small catalog created first, so their sagas run while the scenarios read, cancel and
retry them; afterwards every one of them ends, as its order says, and none failed for a reason
the API should have refused at the door (an email the notification cannot send to).

``make test`` runs a few examples per operation and a few short scenarios (seconds);
``make fuzz`` many more.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable
from hypothesis.stateful import Bundle
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.generation.meta import TestPhase
from schemathesis.generation.stateful.state_machine import (
    APIStateMachine,
    StepInput,
    StepOutput,
    normalize_name,
)
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.stateful import is_root_allowed, transition

from orchestrator.domain.status import ORDER_STATUS_FOR, SagaStatus
from sagakit.testing.waiting import eventually

from .conftest import System

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# Stateful: this many scenarios of up to STEPS linked calls each, per service.
SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "10"))
STEPS = int(os.environ.get("FUZZ_STEPS", "8"))
# make test: the same cases every run (reproducible); make fuzz: new ones each run.
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
TOKEN = {"Authorization": "Bearer local-admin-token"}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# What a row count is taken of, per service: invalid input must never create one.
CREATED = {
    "orchestrator": ["SELECT count(*) FROM orders", "SELECT count(*) FROM sagas"],
    "inventory": ["SELECT count(*) FROM products"],
}
# The operations that create those rows, and the status that says they did.
CREATES = {"POST /orders": 202, "POST /products": 201}
# Not followed statefully: the live status streams until the order is final (seconds).
STREAMING = r"/events$"


@dataclass
class Report:
    """What one service's fuzzing sent and got, and every failed check."""

    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # Invalid cases whose body was valid (only a header or an ignored query parameter was not)
    # and that were accepted: the only rows the invalid cases may create.
    accepted_with_valid_body: int = 0
    # Stateful: steps per "first|linked METHOD /path", and the rows the answers say were created.
    steps: Counter[str] = field(default_factory=Counter)
    created: int = 0
    scenarios: int = 0
    flaky_runs: int = 0

    def summary(self) -> str:
        return ", ".join(f"{k}: {n}" for k, n in sorted(self.statuses.items()))


def fuzz(base_url: str, mode: GenerationMode, report: Report) -> None:
    """Every operation of the service's schema, ``EXAMPLES`` cases each (blocking: a thread)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    # Not schemathesis' negative_data_rejection: it wants unknown query parameters refused,
    # and they are ignored (as HTTP APIs do); what matters, nothing created, is counted below.
    checks = CHECKS
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        label = f"{mode.value} {operation.method.upper()} {operation.path}"
        run = _runner(base_url, operation.as_strategy(generation_mode=mode), checks, label, report)
        try:
            run()
        except Unsatisfiable:
            if mode == GenerationMode.POSITIVE:
                raise
            # No parameter and no body: nothing can be invalid.
        except Exception as exc:  # collect, to report every operation that fails
            report.failures.append(f"{label}: {exc}")


def _runner(
    base_url: str, strategy: object, checks: list[object], label: str, report: Report
) -> Callable[[], None]:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: each case is a real request
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)  # type: ignore[call-overload,untyped-decorator]
    def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        response = case.call(base_url=base_url, headers=TOKEN, timeout=10)
        report.statuses[f"{label.split()[0]} {response.status_code}"] += 1
        case.validate_response(response, checks=checks)  # type: ignore[arg-type]
        body = case.meta.components.get(ParameterLocation.BODY) if case.meta else None
        if body is not None and body.mode == GenerationMode.NEGATIVE:
            assert 400 <= response.status_code < 500, (
                f"an invalid body answered {response.status_code}: {case.as_curl_command()}"
            )
        elif (
            case.method == "POST"
            and response.status_code in (201, 202)
            and case.meta
            and GenerationMode.NEGATIVE in {c.mode for c in case.meta.components.values()}
        ):
            report.accepted_with_valid_body += 1

    return run  # type: ignore[no-any-return]


def _is_negative_body(case: schemathesis.Case) -> bool:  # type: ignore[type-arg]
    body = case.meta.components.get(ParameterLocation.BODY) if case.meta else None
    return body is not None and body.mode == GenerationMode.NEGATIVE


def stateful(base_url: str, report: Report) -> None:
    """``SCENARIOS`` scenarios of linked calls on the service (blocking: a thread)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    # Only the links the API declares: what is tested is what is published.
    schema.config.phases.stateful.inference.algorithms = []
    scenario = _scenario_class(schema.exclude(path_regex=STREAMING), base_url, report)
    # Hypothesis replays choices expecting the same draws, but a real system answers
    # differently the second time (a saga already cancelled, an Idempotency-Key already used):
    # a run may end early on that (Flaky), then the rest of the scenarios run afresh (each run
    # starts with Hypothesis' simplest scenario again).
    for _ in range(10):
        left = SCENARIOS - report.scenarios
        if left <= 0:
            return
        try:
            scenario.run(settings=_scenario_settings(left))
        except Flaky:
            report.flaky_runs += 1
    assert report.scenarios, "no scenario ran to its end"


def _scenario_settings(scenarios: int) -> settings:
    return settings(
        max_examples=scenarios,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        # Random even in make test: fixed choices would repeat the same product ids, each one
        # created once and then a 409, and the system's state makes a scenario unrepeatable
        # anyway. A failure prints the requests (curl) that led to it.
        derandomize=False,
        phases=[Phase.generate],  # no shrinking: each step is a real request
        suppress_health_check=list(HealthCheck),
    )


def _scenario_class(schema: BaseSchema, base_url: str, report: Report) -> type[APIStateMachine]:
    """The schema's state machine; its scenarios start with an operation that creates (mostly
    valid requests, some invalid), not with schemathesis' guess (which skips ``POST /orders``:
    its ``customer_id`` looks like a reference to a resource no operation creates)."""
    machine = schema.as_state_machine()
    roots = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if operation.label not in CREATES:
            continue
        valid, invalid = (
            operation.as_strategy(generation_mode=mode, phase=TestPhase.STATEFUL)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        )
        cases = _mostly(valid, invalid)
        name = normalize_name(f"CREATE -> {operation.label}")
        roots[name] = transition(
            name=name,
            target=Bundle("catch_all"),
            precondition=is_root_allowed(operation.label),
            input=cases.map(StepInput.initial),
        )
    assert roots, "no operation creates anything"
    hidden = dict.fromkeys(machine.root_rules)  # type: ignore[arg-type]

    class Scenario(machine):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:  # type: ignore[type-arg]
            return {"base_url": base_url, "headers": TOKEN, "timeout": 10}

        def before_call(self, case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            if not _is_negative_body(case):
                case.body = _integral_numbers_as_integers(case.body)
                if case.operation.label == "POST /products" and isinstance(case.body, dict):
                    case.body["product_id"] = _unique(str(case.body["product_id"]))
                if case.operation.label == "POST /orders" and isinstance(case.body, dict):
                    case.body = _buyable(copy.deepcopy(case.body))

        def step(self, input: StepInput) -> StepOutput:
            output: StepOutput = super().step(input)
            _check_step(input, output, report)
            return output

        def validate_response(
            self,
            response: Response,
            case: schemathesis.Case,  # type: ignore[type-arg]
            additional_checks: object = None,
            **kwargs: object,
        ) -> None:
            try:
                case.validate_response(response, checks=CHECKS)  # type: ignore[arg-type]
            except (Exception, FailureGroup) as exc:  # collected: a raise would end the scenario
                report.failures.append(f"stateful {case.method} {case.path}: {exc}")

        def teardown(self) -> None:
            report.scenarios += 1

    for name, rule in {**hidden, **roots}.items():
        setattr(Scenario, name, rule)
    Scenario.root_rules = frozenset(roots)
    return Scenario


def _mostly(
    valid: st.SearchStrategy[schemathesis.Case],  # type: ignore[type-arg]
    invalid: st.SearchStrategy[schemathesis.Case],  # type: ignore[type-arg]
) -> st.SearchStrategy[schemathesis.Case]:  # type: ignore[type-arg]
    """One case in ten invalid (a middle value: Hypothesis favours the bounds of a range)."""
    return st.integers(0, 9).flatmap(lambda n: invalid if n == 5 else valid)


def _integral_numbers_as_integers(value: Any) -> Any:
    """``143.0`` -> ``143``: JSON Schema counts ``143.0`` as an integer, so schemathesis sends it
    in valid bodies, but the API's integers are strict (a quantity or a price is a JSON integer,
    never a float, however round); left as is, most valid orders would be refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_numbers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_numbers_as_integers(v) for v in value]
    return value


_SERIAL = itertools.count()
# Valid orders buy from this catalog (created before the scenarios), in its currency, with
# these payment methods (the simulated Stripe's: one that succeeds, one that is declined), so
# their sagas run to the end while the scenarios read, cancel and retry them.
CATALOG = ["fuzz-mug", "fuzz-tee", "fuzz-cap"]
CATALOG_CURRENCY = "EUR"
PAYMENT_METHODS = ["pm_card_visa", "pm_card_visa", "pm_card_chargeDeclined"]


def _pick(choices: list[str], seed: object) -> str:
    return choices[zlib.crc32(repr(seed).encode()) % len(choices)]


def _buyable(body: dict[str, Any]) -> dict[str, Any]:
    """A valid order made one that can succeed: random ids and amounts would fail every saga
    at its first step (unknown product), and cancel and retry would only meet finished sagas."""
    items = body.get("items")
    if isinstance(items, list):
        body["items"] = [
            {**item, "product_id": _pick(CATALOG, item.get("product_id")), "quantity": 1}
            for item in items[:3]
            if isinstance(item, dict)
        ] or items
    if "currency" in body:
        body["currency"] = CATALOG_CURRENCY
    if "payment_method" in body:
        body["payment_method"] = _pick(PAYMENT_METHODS, body["payment_method"])
    return body


def _unique(product_id: str) -> str:
    """A valid product id made unique: Hypothesis replays its choices expecting the same
    answers, and the same id twice is a 201 then a 409, which ends the run (Flaky)."""
    suffix = f".{next(_SERIAL)}"
    return product_id[: 64 - len(suffix)] + suffix


def _check_step(input: StepInput, output: StepOutput, report: Report) -> None:
    response, case = output.response, output.case
    label = f"{case.method.upper()} {case.operation.path}"
    report.statuses[f"stateful {response.status_code}"] += 1
    report.steps[f"{'linked' if input.transition else 'first'} {label}"] += 1
    problem = None
    if _is_negative_body(case) and not 400 <= response.status_code < 500:
        problem = f"an invalid body answered {response.status_code}"
    linked = {name for _, name in input.applied_parameters}
    if input.transition and {p.name for p in case.operation.path_parameters} <= linked:
        report.steps[f"linked {label} (ids from the link)"] += 1
        if response.status_code == 404:
            problem = f"the link {input.transition.id} from a successful answer led to a 404"
    if problem:
        report.failures.append(f"stateful {label}: {problem}: {case.as_curl_command()}")
    if response.status_code == CREATES.get(label) and not _replayed(response):
        report.created += 1


def _replayed(response: Response) -> bool:
    return response.headers.get("idempotent-replayed", [""])[0] == "true"


def _first(failures: list[str], shown: int = 5) -> str:
    distinct = list(dict.fromkeys(failures))
    more = f"\n\n... {len(distinct) - shown} more" if len(distinct) > shown else ""
    return f"{len(failures)} failed steps:\n\n" + "\n\n".join(distinct[:shown]) + more


async def _create_catalog(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.inventory_api, headers=TOKEN) as client:
        for product_id in CATALOG:
            product = {"product_id": product_id, "name": product_id, "price": 250}
            stock = {"currency": CATALOG_CURRENCY, "stock": 1_000_000_000}
            response = await client.post("/products", json={**product, **stock})
            assert response.status_code in (201, 409), response.text


# Failures of a saga that say its order should have been refused at the door (it was charged
# first): an address the notification cannot send to. Other failures are the system's own
# answers (a declined card, an operator's cancel, a step out of time on a busy machine).
REFUSABLE_FAILURES = ("INVALID_RECIPIENT",)


async def _every_saga_ends_as_its_order_says(system: System, since: datetime) -> None:
    """Whatever the scenarios did (cancels and retries at any point), every saga of the orders
    they placed ends, its order says how, it failed only for a reason the API could not have
    refused, and no message was dead-lettered."""

    async def settled() -> list[tuple[str, str, str | None]] | None:
        rows = await system.query(
            "orchestrator",
            "SELECT s.status, o.status, s.failure_reason FROM sagas s JOIN orders o USING "
            "(order_id) WHERE o.created_at >= $1",
            since,
        )
        if not all(SagaStatus(r[0]).terminal for r in rows):
            return None
        return [(r[0], r[1], r[2]) for r in rows]

    sagas = await eventually(settled, timeout=30, interval=0.2, what="every saga to end")
    assert sagas is not None
    for saga_status, order_status, reason in sagas:
        assert order_status == ORDER_STATUS_FOR[SagaStatus(saga_status)], (saga_status, reason)
        assert not any(code in (reason or "") for code in REFUSABLE_FAILURES), reason
    # Nor did any message on their way end in a dead-letter queue (a crash in a handler).
    async with httpx.AsyncClient(base_url=system.api, headers=TOKEN) as client:
        dlq = (await client.get("/admin/dlq")).json()
    assert dlq["unreplayed"] == 0, [t for t in dlq["topics"] if t["records"]]


async def counts(system: System, service: str) -> list[int]:
    return [int((await system.query(service, sql))[0][0]) for sql in CREATED.get(service, [])]


@pytest.mark.parametrize("service", ["orchestrator", "inventory", "payment", "notification"])
async def test_the_openapi_holds_under_fuzzing(system: System, service: str) -> None:
    base_url = system.processes[service].base_url
    report = Report()

    await asyncio.to_thread(fuzz, base_url, GenerationMode.POSITIVE, report)
    before = await counts(system, service)
    await asyncio.to_thread(fuzz, base_url, GenerationMode.NEGATIVE, report)
    after = await counts(system, service)

    print(f"{service}: {report.summary()}")
    assert not report.failures, "\n\n".join(report.failures)
    expected = [n + report.accepted_with_valid_body for n in before]
    assert after == expected, f"invalid requests created rows: {before} -> {after}"
    assert report.statuses, "the fuzzer sent nothing"


@pytest.mark.parametrize("service", ["orchestrator", "inventory"])
async def test_linked_calls_hold_under_stateful_fuzzing(system: System, service: str) -> None:
    base_url = system.processes[service].base_url
    report = Report()

    if service == "orchestrator":
        await _create_catalog(system)
    [(since,)] = await system.query("orchestrator", "SELECT now()")
    before = await counts(system, service)
    await asyncio.to_thread(stateful, base_url, report)
    after = await counts(system, service)

    print(f"{service}: {report.scenarios} scenarios ({report.flaky_runs} replays cut short)")
    print(f"{service}: {report.summary()}")
    print("\n".join(f"  {n:4} {step}" for step, n in sorted(report.steps.items())))
    assert not report.failures, _first(report.failures)
    if service == "orchestrator":
        await _every_saga_ends_as_its_order_says(system, since)
    assert after == [n + report.created for n in before], (
        f"rows {before} -> {after}, but {report.created} creations were answered"
    )
    linked = [step for step in report.steps if step.startswith("linked")]
    assert linked, f"no link was followed: {sorted(report.steps)}"
