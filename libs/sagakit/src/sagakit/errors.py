"""The error hierarchy ("sentinel errors").

Every error has a stable ``code`` (for logs, metrics and DLQ headers) and a ``retriable`` flag,
like aiokafka's ``KafkaError.retriable``. Match them with ``except``, never by message text.

Three families, handled differently by the consumer loop (and ``ConfigurationError``, which
stops a service: exit status 2, as a bad setting does):

- ``BusinessError``: an expected outcome (out of stock, card declined). Handlers turn it into a
  failure reply; it never reaches the consumer loop.
- ``InfrastructureError``: the database, the broker or a gateway is unreachable. Retriable: the
  consumer retries the same record with backoff and never skips it.
- ``PoisonMessage``: the record can never be processed (unparseable, invalid, unknown type).
  Not retriable: it goes to ``<topic>.dlq`` with the reason, and the consumer carries on.
"""

from __future__ import annotations


class SagaError(Exception):
    """Root of every error this project raises on purpose."""

    code: str = "saga_error"
    retriable: bool = False

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


# --- business outcomes ---------------------------------------------------------------------------


class BusinessError(SagaError):
    """An expected business outcome that a handler reports as a failure reply."""

    code = "business_error"


# --- infrastructure ------------------------------------------------------------------------------


class InfrastructureError(SagaError):
    """A dependency (database, broker, gateway) failed; trying again later may succeed."""

    code = "infrastructure_error"
    retriable = True


class DatabaseUnavailable(InfrastructureError):
    """The database could not be reached or aborted the transaction (deadlock, serialization)."""

    code = "database_unavailable"


class BrokerUnavailable(InfrastructureError):
    """Kafka could not be reached or did not acknowledge in time."""

    code = "broker_unavailable"


class GatewayUnavailable(InfrastructureError):
    """An external gateway (payments, SMTP) timed out or answered with a transient error."""

    code = "gateway_unavailable"


# --- configuration -------------------------------------------------------------------------------


class ConfigurationError(SagaError):
    """A setting is wrong in a way seen only when it is used (a broker refuses the login, a
    certificate does not verify): the same settings will keep failing, so no retry."""

    code = "configuration_error"


# --- poison --------------------------------------------------------------------------------------


class PoisonMessage(SagaError):
    """A record that can never be processed; it goes to the dead-letter topic."""

    code = "poison"


class MissingHeader(PoisonMessage):
    """A required Kafka header is absent or empty."""

    code = "missing_header"


class UndecodableMessage(PoisonMessage):
    """The record's value or a header is not valid UTF-8 / JSON."""

    code = "undecodable"


class InvalidMessage(PoisonMessage):
    """The payload does not match the contract of its message type."""

    code = "invalid_message"


class UnknownMessageType(PoisonMessage):
    """The message type header names a type the registry does not know."""

    code = "unknown_message_type"


class UnexpectedMessage(PoisonMessage):
    """A known message type that this consumer has no handler for."""

    code = "unexpected_message"


class HandlerFailed(PoisonMessage):
    """A handler kept raising an unexpected error; the record is parked so others can proceed."""

    code = "handler_failed"
