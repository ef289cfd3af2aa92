"""The pieces every role process is made of, below the roles themselves.

Each role's ``tap.py`` (and ``compute-all``, which holds them all) builds
a :class:`RoleProcess` from these, in start order: the database first
(roles that have one), then the bus transport, then the RPC roles, then
the API listeners.  ``MultiService`` stops its children in reverse order.

* :func:`make_db`: the DB service, refusing an unmigrated database.
* :func:`make_transport` and :class:`TransportService`: the bus
  connection, started before and stopped after the roles that use it.
* :func:`lag_monitor` and :class:`ReactorLagMonitor`: measures how late
  the reactor runs a periodic call and logs the worst lag of each minute.
* :func:`db_heartbeat`: the heartbeat of a role that has the database.
* :func:`add_notifier`: the process's notifier (Nova's versioned
  notifications), started after the transport and stopped before it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from twisted.application import service
from twisted.internet import defer, task

from twisted_compute import exception
from twisted_compute.log import Logger

if TYPE_CHECKING:
    from twisted_compute.db.pool import DBService


class RoleProcess(service.MultiService):
    """The top service of a role process."""


def make_db(conf, reactor, auto_migrate: bool = False) -> DBService:
    """The DB service, refusing an unmigrated database (SystemExit naming
    the command that fixes it).  The database modules are imported here:
    the agents, which have no database, do not load them."""
    from twisted_compute.db import migration
    from twisted_compute.db.pool import DBService

    db = DBService(conf.database_url, reactor,
                   pool_size=conf.database.max_pool_size,
                   recycle=conf.database.connection_recycle_time,
                   query_timeout=conf.database.query_timeout)
    try:
        if auto_migrate:
            migration.upgrade(db.engine)
        migration.check(db.engine)
    except Exception as exc:  # noqa: BLE001 - reported, then exit
        message = getattr(exc, "message", None) or str(exc)
        raise SystemExit(f"twisted-compute: {message}") from None
    return db


def make_transport(conf, reactor):
    from twisted_compute.rpc.transport import transport_for
    try:
        return transport_for(conf, reactor)
    except exception.ComputeException as exc:
        raise SystemExit(f"twisted-compute: [DEFAULT] transport_url: "
                         f"{exc.format_message()}") from None
    except ValueError as exc:
        raise SystemExit(
            f"twisted-compute: [DEFAULT] transport_url: {exc}") from None


def add_notifier(conf, reactor, top: service.MultiService, transport):
    """The process's :class:`~twisted_compute.notifications.Notifier`,
    run by a service added to ``top`` now (so after the transport, and
    stopped before it)."""
    from twisted_compute.notifications import NotifierService, make_notifier
    notifier = make_notifier(conf, reactor, transport)
    NotifierService(notifier).setServiceParent(top)
    return notifier


def db_heartbeat(db, host: str, binary: str, topic: str):
    def beat():
        return db.services.heartbeat(host, binary, topic)
    return beat


class TransportService(service.Service):
    """Starts the bus transport first and stops it last."""

    log = Logger()
    name = "transport"

    def __init__(self, transport):
        self.transport = transport

    def startService(self):
        super().startService()
        d = defer.maybeDeferred(self.transport.start)
        d.addErrback(lambda f: self.log.failure(
            "The message bus could not be started", f))

    def stopService(self):
        super().stopService()
        return defer.maybeDeferred(self.transport.stop)


class ReactorLagMonitor(service.Service):
    """Records how late a periodic probe runs (reactor lag) and logs the
    worst of each minute; ``worst_since_start`` is kept for benchmarks."""

    log = Logger()
    name = "reactor-lag"

    def __init__(self, clock, role: str, interval: float = 0.5,
                 report_every: float = 60.0, now=time.monotonic):
        self.clock = clock
        self.role = role
        self.interval = interval
        self.report_every = report_every
        self._now = now
        self._expected: float | None = None
        self.worst_this_period = 0.0
        self.worst_since_start = 0.0
        self._probe: task.LoopingCall | None = None
        self._report: task.LoopingCall | None = None

    def _tick(self):
        now = self._now()
        if self._expected is not None:
            lag = max(0.0, now - self._expected)
            self.worst_this_period = max(self.worst_this_period, lag)
            self.worst_since_start = max(self.worst_since_start, lag)
        self._expected = now + self.interval

    def _log(self):
        self.log.info("{role}: worst reactor lag in the last {period:.0f} s:"
                      " {lag_ms:.1f} ms", role=self.role,
                      period=self.report_every,
                      lag_ms=self.worst_this_period * 1000)
        self.worst_this_period = 0.0

    def startService(self):
        super().startService()
        self._probe = task.LoopingCall(self._tick)
        self._probe.clock = self.clock
        self._probe.start(self.interval, now=True)
        self._report = task.LoopingCall(self._log)
        self._report.clock = self.clock
        self._report.start(self.report_every, now=False)

    def stopService(self):
        super().stopService()
        for loop in (self._probe, self._report):
            if loop is not None and loop.running:
                loop.stop()


def lag_monitor(conf, reactor, role: str) -> ReactorLagMonitor:
    return ReactorLagMonitor(reactor, role,
                             interval=conf.reactor_lag_interval,
                             report_every=conf.reactor_lag_report_interval)
