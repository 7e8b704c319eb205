"""Settings of the inventory service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from sagakit.settings import MAX_PORT, MIN_PORT, ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "inventory"
    database_url: SecretStr = Field(
        default=SecretStr("postgresql+asyncpg://inventory:inventory@127.0.0.1:5432/inventory"),
        validation_alias="INVENTORY_DATABASE_URL",
    )
    http_port: int = Field(
        default=8001, ge=MIN_PORT, le=MAX_PORT, validation_alias="INVENTORY_HTTP_PORT"
    )
