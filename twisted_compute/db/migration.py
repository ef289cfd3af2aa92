"""Schema migrations with Alembic, driven from code.

``compute-manage db sync`` calls :func:`upgrade`; every role calls
:func:`check` at start-up and refuses to run on a database that is not at
the head revision (only ``compute-all`` on its embedded SQLite upgrades by
itself).  These run before the reactor starts, so they may block.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from twisted_compute import exception

_HERE = os.path.dirname(os.path.abspath(__file__))


def _alembic_config(engine: sa.engine.Engine | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", os.path.join(_HERE, "alembic"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current(engine: sa.engine.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.engine.Engine, revision: str = "head") -> None:
    command.upgrade(_alembic_config(engine), revision)


def check(engine: sa.engine.Engine) -> None:
    """Raise :class:`DBNotMigrated` unless the schema is at the head."""
    now, wanted = current(engine), head()
    if now != wanted:
        raise exception.DBNotMigrated(
            url=engine.url.render_as_string(hide_password=True),
            current=now or "empty", head=wanted)
