"""Persistence: SQLAlchemy 2 models, engines and Alembic migrations."""

from cardvault.store.db import Database, create_database
from cardvault.store.migrate import upgrade

__all__ = ["Database", "create_database", "upgrade"]
