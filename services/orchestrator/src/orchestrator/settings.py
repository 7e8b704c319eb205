"""Settings of the orchestrator service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sagakit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "orchestrator"
    database_url: str = Field(
        default="postgresql+asyncpg://orchestrator:orchestrator@127.0.0.1:5432/orchestrator",
        validation_alias="ORCHESTRATOR_DATABASE_URL",
    )
    http_port: int = Field(default=8000, validation_alias="ORCHESTRATOR_HTTP_PORT")
