"""Alembic environment of the notification database (async; URL from settings)."""

from notification.adapters.orm import Base
from notification.settings import Settings
from sagakit.db.migrations import database_url_for, run_env

run_env(Base.metadata, database_url_for(Settings().database_url.get_secret_value()))
