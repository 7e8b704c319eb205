"""Alembic environment of the inventory database (async; URL from settings)."""

from inventory.adapters.orm import Base
from inventory.settings import Settings
from sagakit.db.migrations import database_url_for, run_env

settings = Settings()
run_env(
    Base.metadata,
    database_url_for(settings.database_url.get_secret_value()),
    settings.database_tls,
)
