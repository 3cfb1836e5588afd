"""Alembic migrations, run through :mod:`tovplus.db.migrate` (no alembic.ini needed)."""
