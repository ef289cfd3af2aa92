"""The Alembic migrations build exactly the schema of ``db/models.py``,
on SQLite always and on PostgreSQL and MariaDB when they are reachable
(or demanded)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from twisted.trial.unittest import SynchronousTestCase

from tests import base
from twisted_compute import exception
from twisted_compute.db import migration, models
from twisted_compute.db.pool import make_engine


class _MigrationChecks:
    def engine(self) -> sa.engine.Engine:
        raise NotImplementedError

    def test_unmigrated_is_refused(self):
        engine = self.engine()
        error = self.assertRaises(exception.DBNotMigrated, migration.check,
                                  engine)
        self.assertIn("db sync", str(error))

    def test_upgrade_matches_models(self):
        engine = self.engine()
        migration.upgrade(engine)
        migration.check(engine)
        self.assertEqual(migration.current(engine), migration.head())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn),
                                    models.metadata)
        # Type renderings differ per dialect (e.g. JSON on MariaDB is
        # LONGTEXT); tables, columns and indexes must not.
        structural = [d for d in diff
                      if not (isinstance(d, list) and d and
                              d[0][0] in ("modify_type", "modify_default",
                                          "modify_nullable"))]
        self.assertEqual(structural, [])

    def test_upgrade_is_idempotent(self):
        engine = self.engine()
        migration.upgrade(engine)
        migration.upgrade(engine)
        self.assertEqual(migration.current(engine), migration.head())


class SQLiteMigrationTests(_MigrationChecks, SynchronousTestCase):
    def engine(self):
        path = self.mktemp()
        engine = make_engine("sqlite:///" + path)
        self.addCleanup(engine.dispose)
        return engine


class PostgreSQLMigrationTests(_MigrationChecks, SynchronousTestCase):
    def engine(self):
        url = base.postgresql_url()
        engine = make_engine(url)

        def _drop():
            engine.dispose()
            base.drop_postgresql(url)

        self.addCleanup(_drop)
        return engine


class MariaDBMigrationTests(_MigrationChecks, SynchronousTestCase):
    def engine(self):
        base.require_service("mariadb", port=3306)
        name = "tc_test_" + uuid.uuid4().hex[:12]
        admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/",
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        engine = make_engine(
            f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4")

        def _drop():
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            admin.dispose()

        self.addCleanup(_drop)
        return engine
