"""The RPC service of a role: one manager served over RPC on its topic
(and ``<topic>.<host>``), its periodic tasks (first run delayed by a
random part of ``periodic_fuzzy_delay`` so that many processes started
together do not fire together), and its heartbeat every
``report_interval``.  With a notifier, Nova's ``service.update`` is
emitted after the first heartbeat and whenever one shows the service's
``disabled`` or ``forced_down`` changed.  Stopping it waits for a
periodic task under way for ``periodic_task_stop_timeout`` seconds at
most, then cancels it.
"""

from __future__ import annotations

import random as _random
from typing import Any, Callable, Sequence

from twisted.application import service
from twisted.internet import defer, task

from twisted_compute.log import Logger
from twisted_compute.rpc.server import RPCServer


class PeriodicTask:
    """One periodic method: never two runs at once, errors logged.

    :meth:`stop` waits for a run under way, ``stop_timeout`` seconds at
    most; a run still going then is cancelled, so a hung task never keeps
    its process from stopping."""

    log = Logger()

    def __init__(self, name: str, func: Callable[[], Any], interval: float,
                 clock, initial_delay: float = 0.0,
                 stop_timeout: float = 10.0):
        self.name = name
        self.func = func
        self.interval = interval
        self.clock = clock
        self.initial_delay = initial_delay
        self.stop_timeout = stop_timeout
        self._loop: task.LoopingCall | None = None
        self._delayed = None
        self._running: defer.Deferred | None = None
        self._stopping = False

    def start(self):
        def begin():
            self._delayed = None
            self._loop = task.LoopingCall(self._run)
            self._loop.clock = self.clock
            self._loop.start(self.interval, now=True)

        if self.initial_delay > 0:
            self._delayed = self.clock.callLater(self.initial_delay, begin)
        else:
            begin()

    def _run(self):
        if self._running is not None:
            return None  # the previous run is still going: skip this one
        d = defer.maybeDeferred(self.func)

        def done(result):
            self._running = None
            return result

        def failed(failure):
            if self._stopping and failure.check(defer.CancelledError):
                return None  # cancelled by stop(), which said so
            self.log.failure("Periodic task {task} failed", failure,
                             task=self.name)

        # Marked running before the callbacks: a run that finished
        # already (synchronously) clears the mark at once.
        self._running = d
        d.addErrback(failed).addBoth(done)
        # Never return the Deferred: the loop must not wait on a run that
        # may hang; overlapping runs are skipped instead.
        return None

    def stop(self) -> defer.Deferred:
        if self._delayed is not None and self._delayed.active():
            self._delayed.cancel()
        self._delayed = None
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        running = self._running
        if running is None:
            return defer.succeed(None)
        self._stopping = True
        stopped: defer.Deferred = defer.Deferred()

        def finished(result):
            if timer.active():
                timer.cancel()
            if not stopped.called:
                stopped.callback(None)
            return result

        def give_up():
            self.log.warn("Periodic task {task} did not finish within "
                          "{timeout} s of the stop; cancelling it",
                          task=self.name, timeout=self.stop_timeout)
            running.cancel()
            if not stopped.called:  # a run that ignores its cancellation
                stopped.callback(None)

        timer = self.clock.callLater(self.stop_timeout, give_up)
        running.addBoth(finished)
        return stopped


class RPCRoleService(service.Service):
    """A manager served over RPC, with periodic tasks and a heartbeat."""

    log = Logger()

    def __init__(self, conf, clock, transport, topic: str, host: str,
                 binary: str, endpoints: Sequence[Any],
                 periodic: Sequence[tuple[str, Callable[[], Any], float]]
                 = (),
                 heartbeat: Callable[[], Any] | None = None,
                 on_start: Callable[[], Any] | None = None,
                 random: Callable[[], float] = _random.random,
                 notifier=None):
        """``random`` is the source of the periodic tasks' start jitter:
        a callable returning a float in [0, 1), like
        :func:`random.random` or a seeded :class:`random.Random`'s
        ``random`` (tests)."""
        self.conf = conf
        self.clock = clock
        self.transport = transport
        self.topic = topic
        self.host = host
        self.binary = binary
        self.name = f"{binary}-{host}"
        self.server = RPCServer(transport, topic, host, endpoints)
        self._on_start = on_start
        fuzz = conf.periodic_fuzzy_delay
        stop_timeout = conf.periodic_task_stop_timeout
        self.tasks = [
            PeriodicTask(name, func, interval, clock,
                         initial_delay=fuzz * random() if fuzz else 0.0,
                         stop_timeout=stop_timeout)
            for name, func, interval in periodic]
        self.notifier = notifier
        self._status: tuple | None = None
        if heartbeat is not None and notifier is not None:
            heartbeat = self._watched(heartbeat)
        if heartbeat is not None:
            self.tasks.append(PeriodicTask("heartbeat", heartbeat,
                                           conf.report_interval, clock,
                                           stop_timeout=stop_timeout))
        self._started: defer.Deferred | None = None

    def _watched(self, heartbeat: Callable[[], Any]) -> Callable[[], Any]:
        """``heartbeat``, followed by ``service.update`` after the first
        one that answers: the service telling its status as it starts.
        Later changes (disable, enable, force down) are the API's to
        tell, as Nova's are: the row they change is written there."""
        def beat():
            d = defer.maybeDeferred(heartbeat)
            d.addCallback(self._heartbeat_done)
            return d
        return beat

    def _heartbeat_done(self, row):
        try:
            if isinstance(row, dict) and "disabled" in row:
                status = (bool(row.get("disabled")),
                          bool(row.get("forced_down")),
                          row.get("disabled_reason"))
                if self._status is None:
                    self._status = status
                    values = dict(row)
                    values.setdefault("host", self.host)
                    values.setdefault("binary", self.binary)
                    values.setdefault("topic", self.topic)
                    self.notifier.service_update(None, values)
        except Exception:
            self.log.failure("could not notify the status of {binary} on "
                             "{host}", binary=self.binary, host=self.host)
        return row

    def startService(self):
        super().startService()
        self._started = defer.ensureDeferred(self._start())
        self._started.addErrback(lambda f: self.log.failure(
            "{binary} on {host} failed to start", f, binary=self.binary,
            host=self.host))

    async def _start(self):
        if self._on_start is not None:
            await defer.maybeDeferred(self._on_start)
        await self.server.start()
        for periodic in self.tasks:
            periodic.start()
        self.log.info("{binary} serving topic {topic} on host {host}",
                      binary=self.binary, topic=self.topic, host=self.host)

    def stopService(self):
        super().stopService()
        return defer.ensureDeferred(self._stop())

    async def _stop(self):
        # Together: each waits its stop_timeout at most, so all of them
        # do not take longer than one.
        await defer.gatherResults([periodic.stop()
                                   for periodic in self.tasks])
        await self.server.stop()
