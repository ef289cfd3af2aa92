"""The connection to libvirt, used from a dedicated thread pool.

Every libvirt call is blocking, so none runs on the reactor: the driver
hands functions ``f(conn, *args)`` to :meth:`Host.run`, which runs them
in ``ThreadPool(name="libvirt")`` with the (lazily opened) connection.
When a call fails because the connection died (libvirtd restarted), the
connection is dropped, re-opened, and the call retried once.

Lifecycle events (a guest started, stopped, crashed, was paused...)
come from libvirt's default event loop, which runs in a thread of its own
(``virEventRunDefaultImpl``); each is handed to the reactor with
``callFromThread`` and passed to the listeners as ``(instance_uuid,
power_state)``.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from twisted_compute import exception
from twisted_compute.log import Logger
from twisted_compute.virt import power_state

try:
    import libvirt
except ImportError:  # pragma: no cover - checked by load_driver
    libvirt = None

log = Logger()

#: libvirt domain states -> our power states (as Nova maps them).
LIBVIRT_POWER_STATE = {
    0: power_state.NOSTATE,    # VIR_DOMAIN_NOSTATE
    1: power_state.RUNNING,    # VIR_DOMAIN_RUNNING
    2: power_state.RUNNING,    # VIR_DOMAIN_BLOCKED: running, waiting
    3: power_state.PAUSED,     # VIR_DOMAIN_PAUSED
    4: power_state.SHUTDOWN,   # VIR_DOMAIN_SHUTDOWN: shutting down
    5: power_state.SHUTDOWN,   # VIR_DOMAIN_SHUTOFF
    6: power_state.CRASHED,    # VIR_DOMAIN_CRASHED
    7: power_state.SUSPENDED,  # VIR_DOMAIN_PMSUSPENDED
}


def domain_power_state(domain) -> int:
    """The power state of ``domain`` (blocking: call it in the pool).  A
    shut-off domain with a managed save image is suspended to disk."""
    state, _reason = domain.state()
    result = LIBVIRT_POWER_STATE.get(state, power_state.NOSTATE)
    if result == power_state.SHUTDOWN and state == 5 and \
            domain.hasManagedSaveImage(0):
        return power_state.SUSPENDED
    return result


def event_power_state(event: int, detail: int) -> int | None:
    """The power state a lifecycle event announces, or None for events
    that do not change it (defined, undefined, shutdown requested)."""
    if libvirt is None:  # pragma: no cover
        return None
    if event in (libvirt.VIR_DOMAIN_EVENT_STARTED,
                 libvirt.VIR_DOMAIN_EVENT_RESUMED):
        return power_state.RUNNING
    if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
        return power_state.PAUSED
    if event == libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED:
        return power_state.SUSPENDED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED:
            return power_state.SUSPENDED
        if detail in (libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED,
                      libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED):
            return power_state.CRASHED
        return power_state.SHUTDOWN
    if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
        return power_state.CRASHED
    return None


# --- libvirt's event loop: one per process ---------------------------------

_event_loop_lock = threading.Lock()
_event_loop_thread: threading.Thread | None = None


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:  # pragma: no cover - keep the loop alive
            log.failure("libvirt event loop iteration failed")


def start_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a
    daemon thread (once per process; must happen before the connections
    that want events are opened)."""
    global _event_loop_thread
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        _event_loop_thread = threading.Thread(
            target=_run_event_loop, name="libvirt-events", daemon=True)
        _event_loop_thread.start()


def _quiet_error_handler(_context, _error) -> None:
    """libvirt prints every error on stderr unless a handler is set; we
    raise them as exceptions instead."""


def is_connection_error(error) -> bool:
    """Whether a libvirtError means the connection is gone (so that
    re-opening it may help), not that the call itself was refused."""
    code = error.get_error_code()
    domain = error.get_error_domain()
    if code in (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN):
        return True
    return code in (libvirt.VIR_ERR_SYSTEM_ERROR,
                    libvirt.VIR_ERR_INTERNAL_ERROR,
                    libvirt.VIR_ERR_RPC) and domain in (
        libvirt.VIR_FROM_REMOTE, libvirt.VIR_FROM_RPC)


class Host:
    """One libvirt connection URI, its thread pool and its events."""

    def __init__(self, uri: str, reactor, pool=None, max_threads: int = 4):
        if libvirt is None:
            raise exception.VirtDriverNotAvailable(
                driver="libvirt", reason="the libvirt-python package is not "
                "installed (pip install libvirt-python)")
        self.uri = uri
        self.reactor = reactor
        self._own_pool = pool is None
        self.pool = pool if pool is not None else ThreadPool(
            minthreads=1, maxthreads=max_threads, name="libvirt")
        self._conn = None
        self._conn_lock = threading.Lock()
        self._callback_ids: list[int] = []
        self._listeners: list[Callable[[str, int], Any]] = []
        self._started = False
        #: Times the connection was (re)opened, for tests and logs.
        self.connections_opened = 0

    # --- pool ----------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        libvirt.registerErrorHandler(_quiet_error_handler, None)
        start_event_loop()
        self.pool.start()
        add_trigger = getattr(self.reactor, "addSystemEventTrigger", None)
        if add_trigger is not None and self._own_pool:
            add_trigger("during", "shutdown", self.stop)

    def stop(self) -> None:
        """Close the connection and stop the pool (idempotent)."""
        if not self._started:
            return
        self._started = False
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            self._close(conn)
        if self._own_pool:
            self.pool.stop()

    def run(self, func: Callable[..., Any], *args, **kwargs):
        """Run ``func(conn, *args, **kwargs)`` in the pool; a Deferred of
        its result."""
        self.start()
        return deferToThreadPool(self.reactor, self.pool, self._call, func,
                                 args, kwargs)

    # --- connection (pool threads only) --------------------------------

    def _call(self, func, args, kwargs):
        conn = self.connection()
        try:
            return func(conn, *args, **kwargs)
        except libvirt.libvirtError as error:
            if not is_connection_error(error):
                raise
            log.warn("libvirt connection to {uri} lost ({error}); "
                     "reconnecting", uri=self.uri, error=str(error))
            self._drop(conn)
            return func(self.connection(), *args, **kwargs)

    def connection(self):
        """The open connection, opened (again) when needed; blocking."""
        with self._conn_lock:
            conn = self._conn
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
                self._conn = None
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as error:
                raise exception.HypervisorUnavailable(
                    uri=self.uri, reason=str(error)) from None
            self.connections_opened += 1
            self._register(conn)
            self._conn = conn
            log.info("connected to libvirt at {uri}", uri=self.uri)
            return conn

    def _register(self, conn) -> None:
        try:
            conn.registerCloseCallback(self._closed, None)
        except libvirt.libvirtError:
            pass  # the test driver has no close callbacks
        self._callback_ids = [conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle,
            None)]

    def _drop(self, conn) -> None:
        with self._conn_lock:
            if self._conn is conn:
                self._conn = None
        self._close(conn)

    def _close(self, conn) -> None:
        for callback_id in self._callback_ids:
            try:
                conn.domainEventDeregisterAny(callback_id)
            except libvirt.libvirtError:
                pass
        self._callback_ids = []
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        try:
            conn.close()
        except libvirt.libvirtError:
            pass

    def _closed(self, conn, reason, opaque) -> None:
        """libvirt closed the connection (libvirtd went away): the next
        call opens a new one.  Runs in the event loop thread."""
        log.warn("libvirt connection to {uri} closed (reason {reason})",
                 uri=self.uri, reason=reason)
        with self._conn_lock:
            if self._conn is conn:
                self._conn = None

    # --- events --------------------------------------------------------

    def add_listener(self, callback: Callable[[str, int], Any]) -> None:
        """Call ``callback(instance_uuid, power_state)`` on the reactor
        for every lifecycle event that changes a guest's power state."""
        self._listeners.append(callback)

    def _lifecycle(self, conn, domain, event, detail, opaque) -> None:
        """libvirt's lifecycle callback (event loop thread)."""
        state = event_power_state(event, detail)
        if state is None:
            return
        try:
            uuid = domain.UUIDString()
        except libvirt.libvirtError:
            return
        self.reactor.callFromThread(self.emit, uuid, state)

    def emit(self, instance_uuid: str, state: int) -> None:
        """Deliver one event to the listeners (reactor thread)."""
        for listener in list(self._listeners):
            try:
                listener(instance_uuid, state)
            except Exception:
                log.failure("lifecycle listener failed for {uuid}",
                            uuid=instance_uuid)


__all__ = ["Host", "LIBVIRT_POWER_STATE", "domain_power_state",
           "event_power_state", "is_connection_error", "start_event_loop"]
