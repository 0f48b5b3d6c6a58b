"""Alembic's entry point for the state store. It runs only through state_store.migrate(),
which hands over a connection already inside the writer's turn."""

from alembic import context

context.configure(
    connection=context.config.attributes["connection"], target_metadata=None, render_as_batch=True
)
with context.begin_transaction():
    context.run_migrations()
