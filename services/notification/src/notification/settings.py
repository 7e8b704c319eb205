"""Settings of the notification service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sagakit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notification"
    database_url: str = Field(
        default="postgresql+asyncpg://notification:notification@127.0.0.1:5432/notification",
        validation_alias="NOTIFICATION_DATABASE_URL",
    )
    http_port: int = Field(default=8003, validation_alias="NOTIFICATION_HTTP_PORT")
