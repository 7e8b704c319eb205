"""Settings of the payment service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from sagakit.settings import MAX_PORT, MIN_PORT, ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "payment"
    database_url: SecretStr = Field(
        default=SecretStr("postgresql+asyncpg://payment:payment@127.0.0.1:5432/payment"),
        validation_alias="PAYMENT_DATABASE_URL",
    )
    http_port: int = Field(
        default=8002, ge=MIN_PORT, le=MAX_PORT, validation_alias="PAYMENT_HTTP_PORT"
    )

    # "stripe" (the default): Stripe's API (stripe-mock locally). "simulated": a test double
    # of Stripe whose outcomes follow Stripe's test payment methods, its records in a schema
    # of its own (``payment.adapters.simulated_stripe``); `make demo`, the tests and the fault
    # runs choose it explicitly.
    payment_gateway: Literal["stripe", "simulated"] = Field(
        default="stripe", validation_alias="PAYMENT_GATEWAY"
    )
    stripe_api_key: SecretStr = Field(
        default=SecretStr("sk_test_123"), validation_alias="STRIPE_API_KEY"
    )
    stripe_api_base: str = Field(
        default="http://127.0.0.1:12111", validation_alias="STRIPE_API_BASE"
    )
    # A gateway call slower than this is a timeout (retried with the same idempotency key,
    # never reported as a decline).
    payment_gateway_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias="PAYMENT_GATEWAY_TIMEOUT_S"
    )
