"""Alembic environment: runs migrations on the engine handed in by
:mod:`twisted_compute.db.migration` (never from an alembic.ini URL)."""

from alembic import context

from twisted_compute.db import models

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection,
                      target_metadata=models.metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
