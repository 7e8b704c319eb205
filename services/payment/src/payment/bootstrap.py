"""Wires the payment service together. Nothing is built at import time."""

from __future__ import annotations

from payment.service_layer.handlers import HANDLERS, REGISTRY
from payment.settings import Settings
from sagakit.runtime import Service, build_service


def bootstrap(settings: Settings | None = None) -> Service:
    settings = settings or Settings()
    service = build_service(
        settings,
        registry=REGISTRY,
        topics=[settings.topics.commands("payment")],
    )
    service.consumer.handle(HANDLERS)
    return service
