"""Settings of the orchestrator (environment or `.env`; see `.env.example`)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from sagakit.settings import MAX_PORT, MIN_PORT, ServiceSettings

# What one orchestrator process does. "api": the HTTP order API, admin API and console; it
# starts sagas (their first commands) but consumes nothing. "engine": the Kafka consumer of the
# replies and of the orders topic, step timeouts and compensation retries; its HTTP port serves
# health and metrics only. Both (the default) in one process; each role scales with replicas of
# its own (`make demo ORCHESTRATOR_SPLIT=1` runs one process of each).
ROLES = ("api", "engine")


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "orchestrator"
    database_url: SecretStr = Field(
        default=SecretStr(
            "postgresql+asyncpg://orchestrator:orchestrator@127.0.0.1:5432/orchestrator"
        ),
        validation_alias="ORCHESTRATOR_DATABASE_URL",
    )
    http_port: int = Field(
        default=8000, ge=MIN_PORT, le=MAX_PORT, validation_alias="ORCHESTRATOR_HTTP_PORT"
    )

    roles: str = Field(default="api,engine", validation_alias="ORCHESTRATOR_ROLES")

    step_timeout_s: float = Field(default=30.0, validation_alias="SAGA_STEP_TIMEOUT_S")
    # Workflow factories a deployment adds, "module:function" comma separated (workflow_plugins).
    workflows: str = Field(default="", validation_alias="SAGA_WORKFLOWS")
    compensation_retry_base_s: float = Field(
        default=1.0, validation_alias="COMPENSATION_RETRY_BASE_S"
    )
    compensation_retry_cap_s: float = Field(
        default=60.0, validation_alias="COMPENSATION_RETRY_CAP_S"
    )
    compensation_max_attempts: int = Field(
        default=5, ge=1, validation_alias="COMPENSATION_MAX_ATTEMPTS"
    )
    scheduler_poll_interval_s: float = Field(
        default=0.5, validation_alias="SCHEDULER_POLL_INTERVAL_S"
    )
    scheduler_batch_size: int = Field(default=100, validation_alias="SCHEDULER_BATCH_SIZE")
    # Admission control: the most sagas in flight (RUNNING or COMPENSATING). Beyond it POST
    # /orders answers 503 with Retry-After and the orders topic waits (see admission.py).
    max_in_flight: int = Field(default=500, ge=1, validation_alias="SAGA_MAX_IN_FLIGHT")

    # Under steady load, POST /orders waits up to this long for more orders to store with it
    # (one transaction for several); never when idle (see sagakit.db.group_commit).
    order_intake_linger_ms: int = Field(
        default=10, ge=0, le=1000, validation_alias="ORDER_INTAKE_LINGER_MS"
    )
    order_max_body_bytes: int = Field(default=65_536, validation_alias="ORDER_MAX_BODY_BYTES")
    rate_limit_per_minute: int = Field(default=600, validation_alias="RATE_LIMIT_PER_MINUTE")
    idempotency_ttl_s: int = Field(default=86_400, validation_alias="IDEMPOTENCY_TTL_S")

    @field_validator("roles", mode="before")
    @classmethod
    def _known_roles(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        roles = {role.strip().lower() for role in value.split(",") if role.strip()}
        unknown = roles - set(ROLES)
        if unknown or not roles:
            found = f"unknown: {', '.join(sorted(unknown))}" if unknown else "none given"
            raise ValueError(f"a comma separated list of {' and '.join(ROLES)} ({found})")
        return ",".join(role for role in ROLES if role in roles)

    @property
    def serves_api(self) -> bool:
        return "api" in self.roles.split(",")

    @property
    def runs_engine(self) -> bool:
        return "engine" in self.roles.split(",")

    @property
    def workflow_factories(self) -> list[str]:
        return [spec.strip() for spec in self.workflows.split(",") if spec.strip()]
