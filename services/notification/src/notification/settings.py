"""Settings of the notification service (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from sagakit.settings import LOCAL_ENV, MAX_PORT, MIN_PORT, ServiceSettings, SettingsError

# How the SMTP connection is encrypted (see .env.example).
SmtpTls = Literal["auto", "starttls", "implicit", "off"]


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

    # SMTP server for order confirmations (no login or TLS locally).
    smtp_host: str = Field(default="127.0.0.1", validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, ge=MIN_PORT, le=MAX_PORT, validation_alias="SMTP_PORT")
    smtp_from: str = Field(default="orders@saga-shop.local", validation_alias="SMTP_FROM")
    # SMTP AUTH for a real relay (none locally): no login while the username is empty. The
    # password is a SecretStr so it never shows in a repr or a log line.
    smtp_username: str = Field(default="", validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr = Field(default=SecretStr(""), validation_alias="SMTP_PASSWORD")
    # auto: STARTTLS when the server offers it (else in clear); starttls: STARTTLS required
    # (submission, port 587); implicit: TLS from the first byte (port 465); off: never TLS.
    # The server's certificate and host name are checked (the CA file's CA, else the system's).
    smtp_tls: SmtpTls = Field(default="auto", validation_alias="SMTP_TLS")
    smtp_tls_ca_file: str = Field(default="", validation_alias="SMTP_TLS_CA_FILE")
    # Per SMTP operation (connect, each command, the message data), in seconds. Also the margin
    # before a command's deadline after which no send starts (domain/deadline.py): keep it well
    # below the orchestrator's notification step timeout.
    smtp_timeout_s: float = Field(default=10.0, gt=0, validation_alias="SMTP_TIMEOUT_S")
    # The orchestrator's step timeout (the same variable, read here to check the one above).
    step_timeout_s: float = Field(default=30.0, gt=0, validation_alias="SAGA_STEP_TIMEOUT_S")
    # Transient failures (4xx, connection refused or reset, timeouts) are retried this many times
    # in a row, then the record goes back to the consumer's own backoff.
    smtp_max_attempts: int = Field(default=3, ge=1, validation_alias="SMTP_MAX_ATTEMPTS")

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _lower_tls(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("smtp_tls_ca_file")
    @classmethod
    def _ca_file(cls, value: str) -> str:
        value = value.strip()
        if value and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            raise ValueError(f"file {value!r} is not a readable file")
        return value

    @model_validator(mode="after")
    def _smtp_login_and_tls(self) -> Settings:
        has_user = bool(self.smtp_username.strip())
        has_password = bool(self.smtp_password.get_secret_value())
        if has_user != has_password:
            raise SettingsError(
                "SMTP_USERNAME and SMTP_PASSWORD go together: set both (a login) or neither"
            )
        if self.smtp_tls_ca_file and self.smtp_tls == "off":
            raise SettingsError("SMTP_TLS_CA_FILE set but SMTP_TLS=off uses no TLS")
        if has_user and self.app_env != LOCAL_ENV and self.smtp_tls not in ("starttls", "implicit"):
            raise SettingsError(
                f"SMTP_TLS={self.smtp_tls} could send SMTP_PASSWORD in clear: with a login and "
                f"APP_ENV={self.app_env}, use SMTP_TLS=starttls or implicit"
            )
        return self

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
