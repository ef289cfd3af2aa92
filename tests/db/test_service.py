"""DBService: the order queued work runs in, read and write
transactions, cancellation and the query timeout, and the components in
front of it, with the DB threads and the reactor driven by hand."""

from __future__ import annotations

import os

from sqlalchemy import event
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.base import make_conf, migrated_sqlite
from twisted_compute import exception
from twisted_compute.db import models as m
from twisted_compute.db import pool
from twisted_compute.db.pool import DBService


class ManualThreadPool:
    """Holds 'threaded' work until the test runs it."""

    max = 1

    def __init__(self):
        self.pending = []

    def callInThreadWithCallback(self, on_result, func, *args, **kwargs):
        self.pending.append((on_result, func, args, kwargs))

    def run_one(self):
        on_result, func, args, kwargs = self.pending.pop(0)
        on_result(True, func(*args, **kwargs))

    def run_all(self):
        while self.pending:
            self.run_one()

    def start(self):
        pass

    def stop(self):
        pass


class ManualReactor(Clock):
    """A Clock whose callFromThread calls wait until :meth:`deliver`."""

    def __init__(self):
        super().__init__()
        self.from_threads = []

    def callFromThread(self, f, *args, **kwargs):
        self.from_threads.append((f, args, kwargs))

    def deliver(self):
        while self.from_threads:
            f, args, kwargs = self.from_threads.pop(0)
            f(*args, **kwargs)


def insert_flavor(conn, flavorid):
    conn.execute(m.flavors.insert().values(
        flavorid=flavorid, name=flavorid, memory_mb=64, vcpus=1,
        root_gb=1))
    return flavorid


def flavorids(conn):
    return sorted(r.flavorid for r in conn.execute(m.flavors.select()))


class DBServiceTestCase(SynchronousTestCase):
    query_timeout = 0

    def setUp(self):
        super().setUp()
        self.state_path = self.mktemp()
        os.makedirs(self.state_path)
        self.reactor = ManualReactor()
        self.threads = ManualThreadPool()
        self.db = DBService(migrated_sqlite(self.state_path), self.reactor,
                            threadpool=self.threads,
                            query_timeout=self.query_timeout)
        self.db.startService()
        self.addCleanup(self.db.stopService)

    def settle(self):
        """Run every queued job, then deliver the results."""
        self.threads.run_all()
        self.reactor.deliver()

    def flavors(self):
        d = self.db.read(flavorids)
        self.settle()
        return self.successResultOf(d)


class OrderTests(DBServiceTestCase):
    def test_urgent_work_runs_before_work_queued_earlier(self):
        ran = []

        def job(conn, name):
            ran.append(name)
            return name

        first = self.db.run(job, "normal-1")
        second = self.db.read(job, "normal-2")
        urgent = self.db.prioritized().run(job, "urgent")
        self.settle()
        self.assertEqual(ran, ["urgent", "normal-1", "normal-2"])
        self.assertEqual([self.successResultOf(d) for d in
                          (first, second, urgent)],
                         ["normal-1", "normal-2", "urgent"])

    def test_prioritized_components_run_urgent(self):
        self.db.run(insert_flavor, "f1")
        self.settle()
        normal = self.db.flavors.get_by_flavorid("f1")
        urgent = self.db.prioritized().flavors.get_by_flavorid("f1")
        self.assertIs(self.db.prioritized(), self.db.prioritized())
        self.assertEqual(self.db.queued(), 2)
        # The urgent job is the one the first free thread takes.
        self.threads.run_one()
        self.reactor.deliver()
        self.assertEqual(self.successResultOf(urgent).flavorid, "f1")
        self.assertNoResult(normal)
        self.settle()
        self.assertEqual(self.successResultOf(normal).flavorid, "f1")

    def test_reads_begin_deferred_and_writes_immediate(self):
        begins = []

        @event.listens_for(self.db.engine, "before_cursor_execute")
        def _seen(conn, cursor, statement, *args):
            if statement.startswith("BEGIN"):
                begins.append(statement)

        self.db.flavors.get_all()
        self.db.flavors.create({"flavorid": "f2", "name": "f2",
                                "memory_mb": 64, "vcpus": 1, "root_gb": 1})
        self.db.prioritized().instances.building_too_long(m.utcnow())
        self.db.prioritized().services.heartbeat("h", "nova-compute",
                                                 "compute")
        self.settle()
        self.assertEqual(begins, ["BEGIN", "BEGIN IMMEDIATE", "BEGIN",
                                  "BEGIN IMMEDIATE"])


class CancelTests(DBServiceTestCase):
    def test_cancelled_queued_work_never_runs(self):
        d = self.db.run(insert_flavor, "gone")
        kept = self.db.run(insert_flavor, "kept")
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.settle()
        self.assertEqual(self.successResultOf(kept), "kept")
        self.assertEqual(self.flavors(), ["kept"])

    def test_cancelled_running_work_finishes_and_its_result_is_dropped(self):
        d = self.db.flavors.create({"flavorid": "late", "name": "late",
                                    "memory_mb": 64, "vcpus": 1,
                                    "root_gb": 1})
        self.threads.run_one()  # ran (and committed) in its thread
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.reactor.deliver()  # the result arrives: dropped
        self.assertEqual(self.flavors(), ["late"])

    def test_failure_after_cancel_is_logged_not_raised(self):
        def broken(conn):
            raise RuntimeError("boom")

        d = self.db.run(broken)
        self.threads.run_one()
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.reactor.deliver()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class TimeoutTests(DBServiceTestCase):
    query_timeout = 5

    def test_queued_work_times_out_and_never_runs(self):
        d = self.db.run(insert_flavor, "slow")
        self.reactor.advance(4.9)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        error = self.failureResultOf(d, exception.DBQueryTimeout).value
        self.assertIn("insert_flavor", error.format_message())
        self.assertIn("timed out after 5.0 seconds", error.format_message())
        self.assertIn("waiting for a database thread",
                      error.format_message())
        self.settle()
        self.assertEqual(self.flavors(), [])

    def test_running_work_times_out_and_its_result_is_dropped(self):
        d = self.db.keypairs.get_all("u")
        self.threads.run_one()
        self.reactor.advance(5)
        error = self.failureResultOf(d, exception.DBQueryTimeout).value
        self.assertIn("keypairs.get_all", error.format_message())
        self.assertIn("running", error.format_message())
        self.reactor.deliver()  # no AlreadyCalledError

    def test_work_in_time_leaves_no_timer(self):
        d = self.db.run(insert_flavor, "quick")
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.settle()
        self.assertEqual(self.successResultOf(d), "quick")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cancel_stops_the_timer(self):
        d = self.db.run(insert_flavor, "never")
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.settle()
        self.assertEqual(self.flavors(), [])

    def test_no_timeout_by_default(self):
        conf = make_conf(self.state_path)
        self.assertEqual(conf.database.query_timeout, 0)
        db = DBService(self.db.url, self.reactor,
                       threadpool=ManualThreadPool())
        d = db.run(insert_flavor, "x")
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertNoResult(d)
        db.engine.dispose()


class UnreachableDatabaseTests(DBServiceTestCase):

    def test_a_lost_database_is_a_clear_503(self):
        """A database that refuses connections (restarting, down) fails
        queries with DBUnavailable (503), not a bare driver error."""
        db = DBService("postgresql://nobody:x@127.0.0.1:1/none",
                       self.reactor, threadpool=self.threads)
        self.addCleanup(db.engine.dispose)
        d = db.run(insert_flavor, "x")
        self.settle()
        error = self.failureResultOf(d, exception.DBUnavailable).value
        self.assertEqual(error.code, 503)
        self.assertIn("the database is unreachable", error.format_message())

    def test_a_query_error_stays_what_it_is(self):
        def bad(conn):
            conn.exec_driver_sql("SELECT * FROM no_such_table")
        d = self.db.run(bad)
        self.settle()
        failure = self.failureResultOf(d)
        self.assertFalse(failure.check(exception.DBUnavailable))


class ComponentsTests(SynchronousTestCase):
    def test_every_component_on_both_connectors(self):
        db = DBService("sqlite:///" + self.mktemp(), Clock(),
                       threadpool=ManualThreadPool())
        self.addCleanup(db.engine.dispose)
        names = ("instances", "actions", "flavors", "images", "keypairs",
                 "server_groups", "quotas", "aggregates", "services")
        for connector, priority in ((db, pool.NORMAL),
                                    (db.prioritized(), pool.URGENT)):
            for name in names:
                component = getattr(connector, name)
                self.assertIs(component.db, db)
                self.assertEqual(component.priority, priority)
