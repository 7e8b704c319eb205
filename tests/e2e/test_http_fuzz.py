"""Schemathesis against each service's own OpenAPI, on the four real processes.

For every operation of every service it sends FUZZ_EXAMPLES requests generated from the schema
(valid ones, then invalid ones) and checks that none answers 5xx and that every answer's
status, content type and body are the ones the OpenAPI declares.
Invalid requests must change nothing: the orders and products tables have as many rows after the
invalid ones as before. The admin routes are fuzzed with the admin token, the catalog writes too.

``make test`` runs a few examples per operation (seconds); ``make fuzz`` many more.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation

from .conftest import System

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
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


@dataclass
class Report:
    """What one service's fuzzing sent and got, and every failed check."""

    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # Invalid cases whose body was valid (only a header or an ignored query parameter was not)
    # and that were accepted: the only rows the invalid cases may create.
    accepted_with_valid_body: int = 0

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
