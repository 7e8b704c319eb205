"""Wires the notification service together. Nothing is built at import time."""

from __future__ import annotations

from notification.adapters.mailer import SmtpMailer
from notification.service_layer.confirmations import Confirmations
from notification.service_layer.handlers import COMMANDS, REGISTRY, make_batch_handler
from notification.settings import Settings
from sagakit.runtime import Service, build_service


def bootstrap(settings: Settings | None = None) -> Service:
    settings = settings or Settings()
    service = build_service(
        settings,
        registry=REGISTRY,
        topics=[settings.topics.commands("notification")],
    )
    mailer = SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        timeout_s=settings.smtp_timeout_s,
        max_attempts=settings.smtp_max_attempts,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        tls=settings.smtp_tls,
        tls_ca_file=settings.smtp_tls_ca_file or None,
    )
    service.closers.append(mailer.close)
    confirmations = Confirmations(
        mailer=mailer,
        database=service.database,
        sender=settings.smtp_from,
        send_margin_s=settings.smtp_timeout_s,
    )
    service.consumer.handle_batches(COMMANDS, make_batch_handler(settings.topics, confirmations))
    return service
