"""docker-compose.yml runs the whole system: the infrastructure, the migrate job, then the four
services from the one image. (No Docker engine runs here, so this reads the file as Compose
would, anchors and merge keys included, rather than running `docker compose config`.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"orchestrator": 8000, "inventory": 8001, "payment": 8002, "notification": 8003}
INFRASTRUCTURE = {"postgres", "redis", "kafka", "kafka-topics", "stripe-mock", "mailpit"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_infrastructure_the_migrate_job_and_the_four_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == INFRASTRUCTURE | {"migrate"} | set(SERVICES)


def test_services_and_migrate_use_the_one_image_built_from_the_dockerfile(
    compose: dict[str, Any],
) -> None:
    for name in [*SERVICES, "migrate"]:
        service = compose["services"][name]
        assert service["image"] == "saga-shop:local"
        assert service["build"] == "."
    assert compose["services"]["migrate"]["command"] == ["migrate"]
    assert compose["services"]["migrate"]["restart"] == "no"


def test_each_service_starts_after_migrations_and_topics(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        service = compose["services"][name]
        assert service["command"] == ["python", "-m", name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["kafka-topics"] == {
            "condition": "service_completed_successfully"
        }
    assert compose["services"]["migrate"]["depends_on"]["postgres"] == {
        "condition": "service_healthy"
    }


def test_each_service_binds_every_interface_and_publishes_its_port(
    compose: dict[str, Any],
) -> None:
    for name, port in SERVICES.items():
        service = compose["services"][name]
        assert service["environment"]["HTTP_HOST"] == "0.0.0.0"
        [published] = service["ports"]
        assert re.fullmatch(
            rf"127\.0\.0\.1:\$\{{{name.upper()}_HTTP_PORT:-{port}\}}:{port}", published
        )
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])


def test_each_service_gets_its_own_database_and_the_infrastructure_by_name(
    compose: dict[str, Any],
) -> None:
    for name in SERVICES:
        environment = compose["services"][name]["environment"]
        urls = {k for k in environment if k.endswith("_DATABASE_URL")}
        assert urls == {f"{name.upper()}_DATABASE_URL"}
        assert f"@postgres:5432/{name}" in environment[f"{name.upper()}_DATABASE_URL"]
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
    migrate = compose["services"]["migrate"]["environment"]
    assert {k for k in migrate if k.endswith("_DATABASE_URL")} == {
        f"{name.upper()}_DATABASE_URL" for name in SERVICES
    }
    assert compose["services"]["payment"]["environment"]["STRIPE_API_BASE"] == (
        "http://stripe-mock:12111"
    )
    assert compose["services"]["notification"]["environment"]["SMTP_HOST"] == "mailpit"


def test_the_stop_grace_period_outlasts_the_shutdown_timeout(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        grace = compose["services"][name]["stop_grace_period"]
        assert int(grace.removesuffix("s")) >= 8 + 5  # SHUTDOWN_TIMEOUT_S and closing clients
