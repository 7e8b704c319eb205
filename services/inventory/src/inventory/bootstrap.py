"""Wires the inventory service together. Nothing is built at import time."""

from __future__ import annotations

from inventory.entrypoints.http import catalog_router
from inventory.service_layer.handlers import REGISTRY, make_handlers
from inventory.settings import Settings
from sagakit.runtime import Service, build_service


def bootstrap(settings: Settings | None = None) -> Service:
    settings = settings or Settings()
    service = build_service(
        settings,
        registry=REGISTRY,
        topics=[settings.topics.commands("inventory")],
    )
    service.consumer.handle(make_handlers(settings.topics))
    service.app.include_router(catalog_router(service.session_factory))
    return service
