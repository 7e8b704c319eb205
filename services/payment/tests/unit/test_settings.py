"""Gateway settings: the local gateway by default, Stripe on request, nothing else accepted."""

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker

from payment.adapters.local_gateway import LocalGateway
from payment.adapters.stripe_gateway import StripeGateway
from payment.bootstrap import build_gateway
from payment.settings import Settings

pytestmark = pytest.mark.unit


def test_the_defaults_are_the_local_gateway_and_stripe_mock(monkeypatch) -> None:
    for name in ("PAYMENT_GATEWAY", "STRIPE_API_BASE", "PAYMENT_GATEWAY_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.payment_gateway == "local"
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert settings.payment_gateway_timeout_s == 10
    assert isinstance(build_gateway(settings, async_sessionmaker()), LocalGateway)


async def test_stripe_is_chosen_by_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("PAYMENT_GATEWAY", "stripe")
    monkeypatch.setenv("PAYMENT_GATEWAY_TIMEOUT_S", "2.5")
    settings = Settings(_env_file=None)
    gateway = build_gateway(settings, async_sessionmaker())
    assert isinstance(gateway, StripeGateway)
    await gateway.close()
    assert settings.payment_gateway_timeout_s == 2.5


@pytest.mark.parametrize(
    ("name", "value"), [("PAYMENT_GATEWAY", "paypal"), ("PAYMENT_GATEWAY_TIMEOUT_S", "0")]
)
def test_bad_values_are_rejected(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
