"""Storage adapters on SQLAlchemy Core (async): the spend ledger and the virtual keys, on SQLite
(embedded default) or PostgreSQL, one schema, migrated by Alembic at start-up."""

from calcifer.storage.database import Database, open_database
from calcifer.storage.keys import SqlKeyStore
from calcifer.storage.ledger import SqlLedger

__all__ = ["Database", "SqlKeyStore", "SqlLedger", "open_database"]
