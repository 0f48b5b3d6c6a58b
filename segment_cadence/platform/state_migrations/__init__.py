"""Alembic migrations of the operational state store, applied by state_store.migrate()."""
