"""`.env.example` lists every setting of every service, and nothing that no service reads."""

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from inventory.settings import Settings as InventorySettings
from notification.settings import Settings as NotificationSettings
from orchestrator.settings import Settings as OrchestratorSettings
from payment.settings import Settings as PaymentSettings

pytestmark = pytest.mark.unit

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
SETTINGS: list[type[BaseSettings]] = [
    OrchestratorSettings,
    InventorySettings,
    PaymentSettings,
    NotificationSettings,
]


def variable_names(settings: type[BaseSettings]) -> set[str]:
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else name.upper())
    return names


def listed() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_every_setting_is_in_env_example() -> None:
    wanted = set().union(*(variable_names(s) for s in SETTINGS))
    assert wanted - listed() == set()


def test_env_example_lists_nothing_unknown() -> None:
    known = set().union(*(variable_names(s) for s in SETTINGS))
    assert listed() - known == set()
