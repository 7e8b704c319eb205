"""Wires the inventory service together. Nothing is built at import time."""

from __future__ import annotations

from inventory.entrypoints.http import CATALOG_LINKS, catalog_router
from inventory.service_layer.handlers import COMMANDS, REGISTRY, make_batch_handler
from inventory.settings import Settings
from sagakit.http.links import declare_links
from sagakit.ops.auth import FailedLogins
from sagakit.runtime import Service, build_service


def bootstrap(settings: Settings | None = None) -> Service:
    settings = settings or Settings()
    service = build_service(
        settings,
        registry=REGISTRY,
        topics=[settings.topics.commands("inventory")],
    )
    service.consumer.handle_batches(COMMANDS, make_batch_handler(settings.topics))
    service.app.include_router(
        catalog_router(
            service.session_factory,
            admin_token=settings.admin_token.get_secret_value(),
            failed_logins=FailedLogins.of(settings),
        )
    )
    declare_links(service.app, CATALOG_LINKS)
    return service
