"""ORCHESTRATOR_ROLES: what one orchestrator process runs (the API, the engine, or both)."""

import pytest
from pydantic import ValidationError

from orchestrator.bootstrap import bootstrap
from orchestrator.settings import Settings
from sagakit.settings import settings_error_line

pytestmark = pytest.mark.unit


def paths(service) -> set[str]:  # type: ignore[no-untyped-def]
    return set(service.app.openapi()["paths"])


def test_both_roles_by_default_in_any_order_and_case() -> None:
    assert Settings().roles == "api,engine"
    settings = Settings(ORCHESTRATOR_ROLES=" Engine , api ")  # type: ignore[call-arg]
    assert (settings.roles, settings.serves_api, settings.runs_engine) == ("api,engine", True, True)


@pytest.mark.parametrize(("value", "why"), [("api,worker", "unknown: worker"), (" , ", "none")])
def test_an_unknown_or_empty_role_is_one_line_naming_the_variable(value: str, why: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(ORCHESTRATOR_ROLES=value)  # type: ignore[call-arg]
    line = settings_error_line(refused.value)
    assert line.startswith("invalid settings: ORCHESTRATOR_ROLES: a comma separated list of api")
    assert why in line


def test_the_api_role_serves_the_order_api_and_consumes_nothing() -> None:
    service = bootstrap(Settings(ORCHESTRATOR_ROLES="api"))  # type: ignore[call-arg]
    assert service.consumer.topics == []
    assert {"/orders", "/orders/{order_id}", "/sagas/{saga_id}", "/admin/sagas"} <= paths(service)


def test_the_engine_role_consumes_the_replies_and_serves_only_health_and_metrics() -> None:
    service = bootstrap(Settings(ORCHESTRATOR_ROLES="engine"))  # type: ignore[call-arg]
    assert "orders" in service.consumer.topics
    assert {"inventory.replies", "payment.replies", "notification.replies"} <= set(
        service.consumer.topics
    )
    assert paths(service) == {"/healthz", "/readyz", "/metrics"}
