"""Settings of the payment service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sagakit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "payment"
    database_url: str = Field(
        default="postgresql+asyncpg://payment:payment@127.0.0.1:5432/payment",
        validation_alias="PAYMENT_DATABASE_URL",
    )
    http_port: int = Field(default=8002, validation_alias="PAYMENT_HTTP_PORT")
