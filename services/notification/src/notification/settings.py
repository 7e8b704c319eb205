"""Settings of the notification service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from sagakit.settings import MAX_PORT, MIN_PORT, ServiceSettings, SettingsError


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notification"
    database_url: SecretStr = Field(
        default=SecretStr(
            "postgresql+asyncpg://notification:notification@127.0.0.1:5432/notification"
        ),
        validation_alias="NOTIFICATION_DATABASE_URL",
    )
    http_port: int = Field(
        default=8003, ge=MIN_PORT, le=MAX_PORT, validation_alias="NOTIFICATION_HTTP_PORT"
    )

    # SMTP server for order confirmations (no auth or TLS locally; STARTTLS is used if offered).
    smtp_host: str = Field(default="127.0.0.1", validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, ge=MIN_PORT, le=MAX_PORT, validation_alias="SMTP_PORT")
    smtp_from: str = Field(default="orders@saga-shop.local", validation_alias="SMTP_FROM")
    # SMTP AUTH for a real relay (none locally): no login while the username is empty. The
    # password is a SecretStr so it never shows in a repr or a log line.
    smtp_username: str = Field(default="", validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr = Field(default=SecretStr(""), validation_alias="SMTP_PASSWORD")
    # Per SMTP operation (connect, each command, the message data), in seconds. Also the margin
    # before a command's deadline after which no send starts (domain/deadline.py): keep it well
    # below the orchestrator's notification step timeout.
    smtp_timeout_s: float = Field(default=10.0, gt=0, validation_alias="SMTP_TIMEOUT_S")
    # The orchestrator's step timeout (the same variable, read here to check the one above).
    step_timeout_s: float = Field(default=30.0, gt=0, validation_alias="SAGA_STEP_TIMEOUT_S")
    # Transient failures (4xx, connection refused or reset, timeouts) are retried this many times
    # in a row, then the record goes back to the consumer's own backoff.
    smtp_max_attempts: int = Field(default=3, ge=1, validation_alias="SMTP_MAX_ATTEMPTS")

    @model_validator(mode="after")
    def _smtp_fits_in_a_step(self) -> Settings:
        # No send starts within smtp_timeout_s of a command's deadline: a timeout as long as the
        # step's would mean no confirmation is ever sent.
        if self.smtp_timeout_s >= self.step_timeout_s:
            raise SettingsError(
                f"SMTP_TIMEOUT_S ({self.smtp_timeout_s:g}) must be shorter than "
                f"SAGA_STEP_TIMEOUT_S ({self.step_timeout_s:g}), or no confirmation is ever sent"
            )
        return self
