"""Gateway settings: Stripe by default, the simulated Stripe only when chosen, nothing else."""

import pytest
from pydantic import ValidationError

from payment.adapters.simulated_stripe import SimulatedStripe
from payment.adapters.stripe_gateway import StripeGateway
from payment.bootstrap import build_gateway
from payment.settings import Settings
from sagakit.db.pool import Database

pytestmark = pytest.mark.unit

DATABASE = Database("postgresql://payment:payment@127.0.0.1:1/payment")  # never connected


async def test_the_default_is_stripe_through_stripe_mock(monkeypatch) -> None:
    for name in ("PAYMENT_GATEWAY", "STRIPE_API_BASE", "PAYMENT_GATEWAY_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.payment_gateway == "stripe"
    assert settings.stripe_api_base == "http://127.0.0.1:12111"
    assert settings.payment_gateway_timeout_s == 10
    gateway = build_gateway(settings, DATABASE)
    assert isinstance(gateway, StripeGateway)
    await gateway.close()


async def test_the_simulator_is_chosen_explicitly(monkeypatch) -> None:
    monkeypatch.setenv("PAYMENT_GATEWAY", "simulated")
    monkeypatch.setenv("PAYMENT_GATEWAY_TIMEOUT_S", "2.5")
    settings = Settings(_env_file=None)
    assert isinstance(build_gateway(settings, DATABASE), SimulatedStripe)
    assert settings.payment_gateway_timeout_s == 2.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAYMENT_GATEWAY", "paypal"),
        ("PAYMENT_GATEWAY", "local"),
        ("PAYMENT_GATEWAY_TIMEOUT_S", "0"),
    ],
)
def test_bad_values_are_rejected(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
