"""statefleet's Alembic migrations (run them with :func:`statefleet.store.upgrade`)."""
