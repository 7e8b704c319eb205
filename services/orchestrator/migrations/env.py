"""Alembic environment of the orchestrator database (async; URL from settings)."""

from orchestrator.adapters.orm import Base
from orchestrator.settings import Settings
from sagakit.db.migrations import database_url_for, run_env

settings = Settings()
run_env(
    Base.metadata,
    database_url_for(settings.database_url.get_secret_value()),
    settings.database_tls,
)
