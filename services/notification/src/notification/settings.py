"""Settings of the notification service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from pydantic import Field

from sagakit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = Field(default="notification", validation_alias="NOTIFICATION_SERVICE_NAME")
    database_url: str = Field(
        default="postgresql+asyncpg://notification:notification@127.0.0.1:5432/notification",
        validation_alias="NOTIFICATION_DATABASE_URL",
    )
    http_port: int = Field(default=8003, validation_alias="NOTIFICATION_HTTP_PORT")
