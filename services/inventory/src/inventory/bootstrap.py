"""Wires the inventory service together. Nothing is built at import time."""

from __future__ import annotations

from inventory.service_layer.handlers import HANDLERS, REGISTRY
from inventory.settings import Settings
from sagakit.runtime import Service, build_service


def bootstrap(settings: Settings | None = None) -> Service:
    settings = settings or Settings()
    service = build_service(
        settings,
        registry=REGISTRY,
        topics=[settings.topics.commands("inventory")],
    )
    service.consumer.handle(HANDLERS)
    return service
