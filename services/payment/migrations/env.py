"""Alembic environment of the payment database (async; URL from settings)."""

from payment.adapters.orm import Base
from payment.settings import Settings
from sagakit.db.migrations import database_url_for, run_env

settings = Settings()
run_env(
    Base.metadata,
    database_url_for(settings.database_url.get_secret_value()),
    settings.database_tls,
)
