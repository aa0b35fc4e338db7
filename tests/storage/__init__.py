"""Tests of the SQL storage adapters, on SQLite and a real PostgreSQL."""
