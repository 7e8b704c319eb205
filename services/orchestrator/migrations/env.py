"""Alembic environment of the orchestrator database (async; URL from settings)."""

from orchestrator.adapters.orm import Base
from orchestrator.settings import Settings
from sagakit.db.migrations import database_url_for, run_env

run_env(Base.metadata, database_url_for(Settings().database_url.get_secret_value()))
