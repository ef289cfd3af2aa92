"""The engine's connection handling: a pooled connection that a database
restart killed while it sat idle is replaced at checkout, without a ping
per transaction while connections are busy."""

from __future__ import annotations

import sqlalchemy as sa
from twisted.trial.unittest import SynchronousTestCase

from tests.base import shared_database_url
from twisted_compute.db import pool


class IdlePingTests(SynchronousTestCase):
    backend = "postgresql"

    def setUp(self):
        self.url = shared_database_url(self.backend)
        self.engine = pool.make_engine(self.url, pool_size=1)
        self.addCleanup(self.engine.dispose)
        real = pool.PING_AFTER_IDLE
        self.addCleanup(setattr, pool, "PING_AFTER_IDLE", real)

    def backend_pid(self) -> int:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    def kill(self, pid: int) -> None:
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT",
                                 poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            self.assertTrue(conn.exec_driver_sql(
                f"SELECT pg_terminate_backend({pid})").scalar())

    def test_killed_idle_connection_is_replaced(self):
        pool.PING_AFTER_IDLE = 0.0
        first = self.backend_pid()
        self.kill(first)
        # The next transaction gets a live connection, not an error.
        second = self.backend_pid()
        self.assertNotEqual(first, second)

    def test_busy_connection_is_not_pinged(self):
        pool.PING_AFTER_IDLE = 3600.0
        first = self.backend_pid()
        self.kill(first)
        # Not idle long enough to be pinged: the dead connection is used,
        # fails, and is invalidated; the one after that is fresh.
        with self.assertRaises(sa.exc.OperationalError):
            self.backend_pid()
        self.assertNotEqual(self.backend_pid(), first)


def plain_url(url: str) -> str:
    """``postgresql+psycopg2://...`` as an operator would write it,
    with no driver named."""
    return sa.engine.make_url(url).set(drivername="postgresql") \
        .render_as_string(hide_password=False)


class PlainPostgresqlURLTests(SynchronousTestCase):
    """``[database] connection = postgresql://...``: SQLAlchemy 2.1 takes
    psycopg 3 for it, which the project installs."""

    def test_plain_url_uses_psycopg3(self):
        from twisted_compute.db import migration
        url = plain_url(shared_database_url("postgresql"))
        self.assertTrue(url.startswith("postgresql://"), url)
        engine = pool.make_engine(url, pool_size=1)
        self.addCleanup(engine.dispose)
        self.assertEqual(engine.dialect.driver, "psycopg")
        migration.check(engine)
        with engine.begin() as conn:
            self.assertEqual(conn.exec_driver_sql("SELECT 1").scalar(), 1)


class IdlePingPsycopg3Tests(IdlePingTests):
    """The idle-connection handling, on the psycopg 3 driver."""

    def setUp(self):
        super().setUp()
        self.engine.dispose()
        self.url = plain_url(self.url)
        self.engine = pool.make_engine(self.url, pool_size=1)
        self.addCleanup(self.engine.dispose)
