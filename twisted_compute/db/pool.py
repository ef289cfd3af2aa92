"""The database as a Twisted service that owns its own thread pool.

Every query is a ``def thd(conn)`` function run in the pool by
:meth:`DBService.run` inside one transaction; it returns plain values or
attrs records, never result proxies.  The reactor thread never touches the
database.  The service starts first and stops last in its role's
``MultiService``.

The service is also the way into the data: it holds one component per
table (``db.instances``, ``db.flavors``, ... see
:mod:`twisted_compute.db.connector`) whose methods run their own queries.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import os
import threading
import time
from typing import Any, Callable, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from twisted_compute import exception
from twisted_compute.db.connector import DBConnector
from twisted_compute.log import Logger

T = TypeVar("T")


class FrozenDict(dict):
    """A dict that refuses changes: what cached JSON columns decode to."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("values decoded from the database are shared and "
                        "read-only: copy them (dict(value)) to change them")

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __ior__(self, other):
        self._refuse()

    def __reduce__(self):
        return (dict, (dict(self),))


_decoder = json.JSONDecoder(object_pairs_hook=FrozenDict)


@functools.lru_cache(maxsize=16384)
def _cached_json_loads(text: str):
    """JSON columns on SQLite: the same text (a flavor snapshot shared by
    many instances, ``{}``, ``[]``) decodes once.  Objects come back as
    :class:`FrozenDict`, since the cache shares them between rows."""
    return _decoder.decode(text)


def make_engine(url: str, pool_size: int = 5,
                recycle: int = 3600) -> sa.engine.Engine:
    """An engine for ``url`` with the settings this project relies on.

    SQLite gets WAL mode (readers do not block the writer, several
    processes may share the file), a busy timeout, and foreign keys on.
    """
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)),
                        exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30},
            json_deserializer=_cached_json_loads,
            pool_size=pool_size, max_overflow=0,
            poolclass=sa.pool.QueuePool if path and path != ":memory:"
            else sa.pool.StaticPool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            if path and path != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Take the write lock at BEGIN so that a read-then-write
            # transaction cannot deadlock against another writer.
            conn.exec_driver_sql("BEGIN IMMEDIATE"
                                 if conn.info.get("write", True)
                                 else "BEGIN")

        @event.listens_for(engine, "connect")
        def _sqlite_no_autobegin(dbapi_conn, _record):
            # Let the "begin" listener issue BEGIN itself.
            dbapi_conn.isolation_level = None

        return engine
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=0,
                              pool_recycle=recycle)

    # Pessimistic disconnect handling, but only for connections that sat
    # idle: a ping on every checkout (pool_pre_ping) costs a round trip
    # per transaction, a third of the conductor's under load.  A busy
    # connection has just proved itself; one idle for longer than
    # PING_AFTER_IDLE seconds (a database restart may have killed it) is
    # pinged, and replaced when the ping fails.
    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        last = record.info.get("checked_in")
        if last is None or time.monotonic() - last < PING_AFTER_IDLE:
            return
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as error:
            raise sa.exc.DisconnectionError(str(error)) from error

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):
        record.info["checked_in"] = time.monotonic()

    return engine


#: Seconds a pooled connection may sit idle before it is pinged at checkout.
PING_AFTER_IDLE = 5.0


#: DB threads (and connections) of a process on SQLite, whatever
#: ``[database] max_pool_size`` says.
SQLITE_THREADS = 1

#: Priorities of DB work (lower runs first).
URGENT = 0
NORMAL = 10


def _is_disconnect(error: "sa.exc.DBAPIError", dialect: str) -> bool:
    """Whether ``error`` says the connection to the database failed (as
    opposed to a query's own error: a constraint, a syntax error).
    SQLite reports its query errors as OperationalError too, and has no
    server to lose."""
    if error.connection_invalidated:
        return True
    return dialect != "sqlite" and isinstance(
        error, (sa.exc.OperationalError, sa.exc.InterfaceError))


def _ignore(success, result):
    return None


#: States of a job: waiting in the queue, running in a DB thread, given up
#: (cancelled or timed out: it does not run, or its result is dropped).
_QUEUED, _RUNNING, _DROPPED = 0, 1, 2


class _Job:
    """One call of :meth:`DBService.run`."""

    __slots__ = ("d", "thd", "readonly", "args", "kwargs", "state",
                 "timer")

    def __init__(self, thd, readonly, args, kwargs):
        self.thd = thd
        self.readonly = readonly
        self.args = args
        self.kwargs = kwargs
        self.state = _QUEUED
        self.timer = None
        self.d: Deferred = None  # type: ignore[assignment]


def _query_name(thd) -> str:
    module = getattr(thd, "__module__", None) or ""
    name = getattr(thd, "__qualname__", None) or repr(thd)
    return f"{module.rsplit('.', 1)[-1]}.{name}" if module else name


class DBService(DBConnector, service.Service):
    """Runs queries in a dedicated, named thread pool; its components
    (``db.instances``, ...) run theirs at normal priority."""

    log = Logger()
    name = "db"

    def __init__(self, url: str, reactor, pool_size: int = 5,
                 recycle: int = 3600,
                 threadpool: ThreadPool | None = None,
                 query_timeout: float = 0):
        self.url = url
        self._reactor = reactor
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            # One writer at a time, local reads in microseconds: more
            # threads only fight over the GIL (measured: 200 boots took
            # 5.8 s with 5 threads, 3.7 s with 1).  With one thread, this
            # process's transactions never wait for each other in SQLite's
            # busy handler (which sleeps 1, 2, ... up to 100 ms between
            # tries); it is left for other processes sharing the file.
            pool_size = SQLITE_THREADS
        self.engine = make_engine(url, pool_size=pool_size, recycle=recycle)
        #: Seconds a job may take, from :meth:`run` to its result, queue
        #: included (0: no limit).
        self.query_timeout = float(query_timeout or 0)
        # An injected pool (a synchronous one in unit tests) is not ours to
        # start or stop.
        self._own_pool = threadpool is None
        self._lock = threading.Lock()
        self._waiting: list = []
        self._order = itertools.count()
        self.pool = threadpool or ThreadPool(
            minthreads=1, maxthreads=pool_size, name="db")
        self._attach_components(self, NORMAL)
        self._prioritized: PrioritizedDB | None = None

    def startService(self):
        super().startService()
        if self._own_pool:
            self.pool.start()
        self.log.info("database {url} ready ({n} threads)",
                      url=sa.engine.make_url(self.url).render_as_string(
                          hide_password=True), n=self.pool.max)

    def stopService(self):
        super().stopService()
        if self._own_pool:
            # ThreadPool.stop joins its threads: do it off the reactor.
            return deferToThreadPool(self._reactor,
                                     self._reactor.getThreadPool(),
                                     self._shutdown)
        self.engine.dispose()
        return None

    def _shutdown(self):
        self.pool.stop()
        self.engine.dispose()

    def run(self, thd: Callable[..., T], *args: Any,
            readonly: bool = False, priority: int = NORMAL,
            **kwargs: Any) -> Deferred[T]:
        """Run ``thd(conn, *args, **kwargs)`` in one transaction in the
        pool; fires with its result (or its exception).

        Waiting work runs by ``priority`` (lower first), then in order:
        work that finishes what is under way (the conductor's and the
        scheduler's, see :meth:`prioritized`) goes before new requests, so
        that under load builds complete instead of queueing behind new
        POSTs.

        Cancelling the Deferred of work still queued drops it from the
        queue: it never runs (the thread that would have run it finds it
        dropped and moves on).  Work already running finishes (and
        commits), but its result is dropped.  After ``query_timeout``
        seconds (when set) the Deferred fails with
        :class:`~twisted_compute.exception.DBQueryTimeout`, the same way.
        """
        job = _Job(thd, readonly, args, kwargs)
        job.d = d = Deferred(lambda _: self._drop(job))
        with self._lock:
            heapq.heappush(self._waiting, (priority, next(self._order), job))
        if self.query_timeout:
            job.timer = self._reactor.callLater(self.query_timeout,
                                                self._time_out, job)
        self.pool.callInThreadWithCallback(_ignore, self._run_next)
        return d

    def prioritized(self) -> "PrioritizedDB":
        """This service, for callers whose work goes first: its
        components (and ``run``) run at :data:`URGENT` priority."""
        if self._prioritized is None:
            self._prioritized = PrioritizedDB(self)
        return self._prioritized

    def queued(self) -> int:
        """Jobs waiting for a DB thread (given-up ones included until a
        thread discards them)."""
        with self._lock:
            return len(self._waiting)

    def _run_next(self) -> None:
        # One call per queued job: pop whichever job is most urgent now.
        with self._lock:
            job = heapq.heappop(self._waiting)[2]
            if job.state != _QUEUED:
                return  # cancelled or timed out while it waited
            job.state = _RUNNING
        try:
            try:
                result = self._transact(job.thd, job.readonly, job.args,
                                        job.kwargs)
            except sa.exc.DBAPIError as error:
                if not _is_disconnect(error, self.engine.dialect.name):
                    raise
                # A database restarting or down: a clear 503 for the
                # API's clients, and a typed error for the bus.
                raise exception.DBUnavailable(
                    reason=str(error.orig or error).strip().splitlines()[0]
                    if str(error.orig or error).strip() else
                    type(error).__name__) from error
        except BaseException:
            self._reactor.callFromThread(self._deliver, job, Failure(),
                                         True)
        else:
            self._reactor.callFromThread(self._deliver, job, result, False)

    def _deliver(self, job: _Job, result, failed: bool) -> None:
        d = job.d
        if d.called:
            # Given up while it ran: the result is dropped.
            if failed:
                self.log.failure("{query} failed after its caller gave up",
                                 result, query=_query_name(job.thd))
            return
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        if failed:
            d.errback(result)
        else:
            d.callback(result)

    def _drop(self, job: _Job) -> bool:
        """Give up ``job`` (on the reactor thread); whether it was still
        waiting (so it will never run)."""
        with self._lock:
            queued = job.state == _QUEUED
            job.state = _DROPPED
        if job.timer is not None:
            if job.timer.active():
                job.timer.cancel()
            job.timer = None
        return queued

    def _time_out(self, job: _Job) -> None:
        job.timer = None
        queued = self._drop(job)
        job.d.errback(Failure(exception.DBQueryTimeout(
            query=_query_name(job.thd), seconds=self.query_timeout,
            where="waiting for a database thread" if queued
            else "running")))

    def read(self, thd: Callable[..., T], *args: Any,
             **kwargs: Any) -> Deferred[T]:
        """Like :meth:`run`, for a query that only reads."""
        return self.run(thd, *args, readonly=True, **kwargs)

    def _transact(self, thd, readonly, args, kwargs):
        with self.engine.connect() as conn:
            conn.info["write"] = not readonly
            with conn.begin():
                return thd(conn, *args, **kwargs)


class PrioritizedDB(DBConnector):
    """A :class:`DBService` whose work (its components' and ``run``'s)
    runs at :data:`URGENT` priority; everything else is the service's
    own."""

    def __init__(self, db: DBService):
        self._db = db
        self._attach_components(db, URGENT)

    def __getattr__(self, name):
        return getattr(self._db, name)

    def run(self, thd, *args, readonly: bool = False, **kwargs):
        return self._db.run(thd, *args, readonly=readonly, priority=URGENT,
                            **kwargs)

    def read(self, thd, *args, **kwargs):
        return self._db.run(thd, *args, readonly=True, priority=URGENT,
                            **kwargs)
