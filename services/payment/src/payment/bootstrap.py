"""Wires the payment service together. Nothing is built at import time."""

from __future__ import annotations

from payment.adapters.simulated_stripe import SimulatedStripe
from payment.adapters.stripe_gateway import StripeGateway
from payment.domain.gateway import PaymentGateway
from payment.service_layer.handlers import COMMANDS, REGISTRY, make_batch_handler
from payment.settings import Settings
from sagakit.db.pool import Database
from sagakit.runtime import Service, build_service


def bootstrap(settings: Settings | None = None) -> Service:
    settings = settings or Settings()
    service = build_service(
        settings,
        registry=REGISTRY,
        topics=[settings.topics.commands("payment")],
    )
    gateway = build_gateway(settings, service.database)
    if isinstance(gateway, StripeGateway):
        service.closers.append(gateway.close)  # its HTTP connection pool
    service.consumer.handle_batches(
        COMMANDS,
        make_batch_handler(reply_topic=settings.topics.replies("payment"), gateway=gateway),
    )
    return service


def build_gateway(settings: Settings, database: Database) -> PaymentGateway:
    if settings.payment_gateway == "simulated":
        # The test double commits its records through its own connections, never the handler's.
        return SimulatedStripe(database)
    return StripeGateway(
        api_key=settings.stripe_api_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        timeout_s=settings.payment_gateway_timeout_s,
    )
