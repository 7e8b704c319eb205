"""Alembic environment of the inventory database (async; URL from settings)."""

from sagakit.db.migrations import database_url_for, run_env

from inventory.adapters.orm import Base
from inventory.settings import Settings

run_env(Base.metadata, database_url_for(Settings().database_url))
