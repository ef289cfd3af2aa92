"""The API's listeners: one per name in ``enabled_apis``.

The listening socket of every API is opened (bound and listening) while
the service is being made, before the reactor runs: a port already in use
is reported at once, naming the API, and that API is skipped.  With
``<name>_workers = 1`` this process adopts the socket and serves it; with
N > 1 it starts N worker processes that adopt the same socket (the kernel
spreads connections between them) and restarts any that dies.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from twisted.application import service
from twisted.internet import error as net_error
from twisted.internet.protocol import ProcessProtocol

from twisted_compute import config as config_mod
from twisted_compute.api import pipeline
from twisted_compute.api.http import ComputeSite
from twisted_compute.db.pool import DBService
from twisted_compute.log import Logger

log = Logger()


def open_listener(host: str, port: int,
                  reuse_port: bool = False) -> socket.socket:
    """A bound, listening, non-blocking TCP socket.

    With ``reuse_port``, several such sockets can share one port
    (SO_REUSEPORT) and the kernel spreads new connections evenly over
    them: one per worker, so that one worker cannot take every
    connection (with a single shared socket, the first worker to wake
    accepts them all and keeps them, keep-alive, for ever)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def tls_options(conf, api: str):
    """OpenSSL context options for ``api`` from ``[ssl]``; SystemExit
    naming the option when a file is missing."""
    from twisted.internet import ssl

    for option in ("cert_file", "key_file"):
        path = getattr(conf.ssl, option)
        if not path or not os.path.exists(path):
            raise SystemExit(
                f"twisted-compute: {api} is in enabled_ssl_apis but "
                f"[ssl] {option} ({path or 'unset'}) is not a readable file")
    with open(conf.ssl.cert_file, "rb") as handle:
        cert_pem = handle.read()
    with open(conf.ssl.key_file, "rb") as handle:
        key_pem = handle.read()
    certificate = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    return certificate.options()


def make_site(resource, conf) -> ComputeSite:
    site = ComputeSite(resource, max_line=conf.wsgi.max_header_line,
                       timeout=conf.wsgi.client_socket_timeout or None)
    site.displayTracebacks = False
    site.noisy = False
    # The request-id middleware logs one line per request, with its id;
    # Twisted's own access-log line (no id) would double the logging.
    site.log = lambda request: None
    return site


def wrap_tls(factory, conf, api: str):
    if api not in conf.enabled_ssl_apis:
        return factory
    from twisted.protocols.tls import TLSMemoryBIOFactory
    return TLSMemoryBIOFactory(tls_options(conf, api), False, factory)


class AdoptedListenerService(service.Service):
    """Serves ``factory`` on an already listening socket."""

    def __init__(self, reactor, api: str, sock_fd: int, family, factory,
                 address: str):
        self._reactor = reactor
        self.api = api
        self._fd = sock_fd
        self._family = family
        self._factory = factory
        self._address = address
        self.port = None
        self.name = f"listener-{api}"

    def startService(self):
        super().startService()
        self.port = self._reactor.adoptStreamPort(
            self._fd, self._family, self._factory)
        log.info("{api} listening on {address}", api=self.api,
                 address=self._address)

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None


class _WorkerProtocol(ProcessProtocol):
    def __init__(self, pool: "WorkerPoolService", index: int):
        self.pool = pool
        self.index = index
        self.ended = None
        self._partial: dict[int, bytes] = {}

    def connectionMade(self):
        self.ended = self.pool._reactor_deferred()

    def childDataReceived(self, fd, data):
        # Workers log to their own stdout/stderr: pass it on, line-wise
        # (a line split between two reads is kept until it is complete).
        data = self._partial.pop(fd, b"") + data
        lines = data.split(b"\n")
        if lines[-1]:
            self._partial[fd] = lines[-1]
        self._write(lines[:-1])

    def childConnectionLost(self, fd):
        rest = self._partial.pop(fd, b"")
        if rest:
            self._write([rest])

    def _write(self, lines):
        wrote = False
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip()
            if text.strip():
                sys.stdout.write(f"[{self.pool.api} worker {self.index}] "
                                 f"{text}\n")
                wrote = True
        if wrote:
            sys.stdout.flush()

    def processEnded(self, reason):
        self.pool._ended(self, reason)


class WorkerPoolService(service.Service):
    """Runs ``workers`` processes serving one API on one shared socket."""

    #: seconds to wait before restarting a worker that died
    restart_delay = 1.0

    def __init__(self, reactor, api: str, sock: list[socket.socket],
                 workers: int, config_files: list[str], address: str,
                 extra_args: list[str] | None = None):
        self._reactor = reactor
        self.api = api
        self._sock = sock
        self.workers = workers
        self._config_files = list(config_files)
        self._address = address
        self._extra_args = extra_args or []
        self.processes: dict[int, Any] = {}
        self._protocols: dict[int, _WorkerProtocol] = {}
        self._stopping = False
        self.name = f"workers-{api}"

    def _reactor_deferred(self):
        from twisted.internet.defer import Deferred
        return Deferred()

    def startService(self):
        super().startService()
        log.info("{api} listening on {address}", api=self.api,
                 address=self._address)
        log.info("Starting {n} workers", n=self.workers)
        for index in range(self.workers):
            self._spawn(index)

    def _spawn(self, index: int):
        args = [sys.executable, "-m", "twisted_compute.api.worker",
                "--api", self.api, "--fd", "3", "--index", str(index)]
        for path in self._config_files:
            args += ["--config-file", path]
        args += self._extra_args
        protocol = _WorkerProtocol(self, index)
        env = dict(os.environ)
        process = self._reactor.spawnProcess(
            protocol, sys.executable, args, env=env,
            childFDs={0: "w", 1: "r", 2: "r",
                      3: self._sock[index % len(self._sock)].fileno()})
        self.processes[index] = process
        self._protocols[index] = protocol
        log.info("{api} worker {index} started (pid {pid})", api=self.api,
                 index=index, pid=process.pid)

    def _ended(self, protocol: _WorkerProtocol, reason):
        index = protocol.index
        self.processes.pop(index, None)
        self._protocols.pop(index, None)
        if protocol.ended is not None:
            protocol.ended.callback(None)
        if self._stopping:
            return
        code = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        log.warn("{api} worker {index} died (exit code {code}, signal "
                 "{signal}); starting a new one", api=self.api,
                 index=index, code=code, signal=signal)
        self._reactor.callLater(self.restart_delay, self._respawn, index)

    def _respawn(self, index: int):
        if not self._stopping and index not in self.processes:
            self._spawn(index)

    #: seconds a worker gets to exit after SIGTERM before SIGKILL
    stop_timeout = 10.0

    def stopService(self):
        from twisted.internet.defer import gatherResults
        super().stopService()
        self._stopping = True
        waiting = []
        for index, process in list(self.processes.items()):
            protocol = self._protocols.get(index)
            try:
                process.signalProcess("TERM")
            except net_error.ProcessExitedAlready:
                continue
            if protocol is not None and protocol.ended is not None:
                waiting.append(protocol.ended)
        if not waiting:
            return None
        kill = self._reactor.callLater(self.stop_timeout, self._kill_all)
        done = gatherResults(waiting)

        def _ended(result):
            if kill.active():
                kill.cancel()
            return result
        return done.addBoth(_ended)

    def _kill_all(self):
        for index, process in list(self.processes.items()):
            log.warn("{api} worker {index} (pid {pid}) did not stop on "
                     "SIGTERM: killing it", api=self.api, index=index,
                     pid=process.pid)
            try:
                process.signalProcess("KILL")
            except net_error.ProcessExitedAlready:
                pass


def add_api_listeners(conf: config_mod.Config, reactor,
                      top: service.MultiService, db: DBService,
                      transport, notifier=None) -> service.MultiService:
    """Add a listener (or a pool of workers) to ``top`` for each API of
    ``enabled_apis``, serving through ``db`` and the bus ``transport``
    (SystemExit with a message when nothing can be served); ``notifier``
    gets the notifications of the API (as ``nova-api:<host>``)."""
    from twisted_compute.api import wiring

    services = wiring.build(conf, reactor, db, transport=transport,
                            notifier=notifier)
    top.api_services = services
    paste = conf.find_file(conf.wsgi.api_paste_config)
    if paste is None:
        raise SystemExit(
            f"twisted-compute: [wsgi] api_paste_config "
            f"{conf.wsgi.api_paste_config} not found")
    started = []
    for api in conf.enabled_apis:
        if api not in config_mod.API_NAMES:
            log.warn("Unknown API {api!r} in enabled_apis: skipped "
                     "(known: {known})", api=api,
                     known=", ".join(config_mod.API_NAMES))
            continue
        try:
            resource = pipeline.load_api(
                paste, api, {"conf": conf, "services": services})
        except pipeline.PipelineError as exc:
            log.error("API {api} skipped: {error}", api=api, error=exc)
            continue
        host = conf.get("DEFAULT", f"{api}_listen")
        port = conf.get("DEFAULT", f"{api}_listen_port")
        workers = conf.get("DEFAULT", f"{api}_workers")
        try:
            sock = open_listener(host, port, reuse_port=workers > 1)
        except OSError as exc:
            log.error("API {api} skipped: cannot listen on {host}:{port}: "
                      "{error}", api=api, host=host, port=port,
                      error=exc.strerror)
            continue
        actual_port = sock.getsockname()[1]
        address = f"{host}:{actual_port}"
        factory = wrap_tls(make_site(resource, conf), conf, api)
        if workers > 1:
            # One socket per worker on the same port (see open_listener).
            socks = [sock] + [open_listener(host, actual_port,
                                            reuse_port=True)
                              for _ in range(workers - 1)]
            pool = WorkerPoolService(reactor, api, socks, workers,
                                     conf.config_files, address)
            pool.setServiceParent(top)
        else:
            listener = AdoptedListenerService(
                reactor, api, sock.fileno(), sock.family, factory, address)
            listener.socket = sock  # keep it open while we serve
            listener.setServiceParent(top)
        started.append(api)
    if not started:
        raise SystemExit(
            "twisted-compute: no API could be started (enabled_apis = "
            f"{','.join(conf.enabled_apis) or 'empty'}); see the log above")
    return top
