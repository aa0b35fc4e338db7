"""Alembic migrations of the Calcifer database (run by `open_database`)."""
