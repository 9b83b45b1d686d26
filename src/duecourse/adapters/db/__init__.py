"""Relational storage: table definitions, the engine factory, bulk frame I/O and Alembic migrations."""
