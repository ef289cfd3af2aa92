"""A worker process of the API: serves one API on a socket it inherits.

Started by :class:`twisted_compute.api.listeners.WorkerPoolService` as
``python -m twisted_compute.api.worker --api NAME --fd 3 --config-file F``.
"""

from __future__ import annotations

import argparse
import os
import socket
import stat
import sys

from twisted.internet import error as net_error
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import (
    FileLogObserver, formatEvent, globalLogBeginner)
from zope.interface import implementer

from twisted_compute.log import Logger
from twisted_compute.tap import prepare_process

log = Logger()


def _format(event) -> str | None:
    """A log line without a timestamp: the parent adds its own when it
    passes the line on."""
    text = formatEvent(event)
    if "log_failure" in event:
        text = f"{text}\n{event['log_failure'].getTraceback()}"
    text = text.replace("\n", "\n\t")
    level = event.get("log_level")
    return (f"[{event.get('log_namespace', '-')}#"
            f"{level.name if level else '-'}] {text}\n")


@implementer(IReadDescriptor)
class ParentWatch:
    """Stops the reactor when the parent goes away.

    The parent holds the write end of the worker's stdin pipe; when the
    parent exits (even by SIGKILL) the pipe is closed and reading it gives
    end-of-file, so no worker outlives its parent.
    """

    def __init__(self, reactor, fd: int = 0):
        self._reactor = reactor
        self._fd = fd
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "ParentWatch"

    def doRead(self):
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            return net_error.ConnectionDone()
        return None

    def connectionLost(self, reason):
        if self._reactor.running:
            log.warn("the parent process is gone: stopping")
            self._reactor.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="twisted-compute-api-worker")
    parser.add_argument("--api", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--config-file", action="append", default=[])
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    from twisted_compute import config as config_mod
    from twisted_compute.api import pipeline, wiring
    from twisted_compute.api.listeners import make_site, wrap_tls
    from twisted_compute.db.pool import DBService
    from twisted_compute.process import make_transport

    globalLogBeginner.beginLoggingTo([FileLogObserver(sys.stdout, _format)],
                                     redirectStandardIO=False)
    try:
        conf = config_mod.load(args.config_file)
    except config_mod.ConfigError as exc:
        sys.stderr.write(f"twisted-compute: {exc}\n")
        return 2
    prepare_process(conf)
    db = DBService(conf.database_url, reactor,
                   pool_size=conf.database.max_pool_size,
                   recycle=conf.database.connection_recycle_time,
                   query_timeout=conf.database.query_timeout)
    transport = make_transport(conf, reactor)
    from twisted_compute.notifications import make_notifier
    notifier = make_notifier(conf, reactor, transport)
    services = wiring.build(conf, reactor, db, transport=transport,
                            notifier=notifier)
    paste = conf.find_file(conf.wsgi.api_paste_config)
    resource = pipeline.load_api(paste, args.api,
                                 {"conf": conf, "services": services})
    factory = wrap_tls(make_site(resource, conf), conf, args.api)
    sock = socket.socket(fileno=args.fd)
    db.startService()
    transport.start()
    notifier.start()
    port = reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
    sock.close()  # the reactor has its own duplicate
    log.info("worker {index} serving {api}", index=args.index, api=args.api)

    async def _shutdown():
        from twisted.internet.defer import maybeDeferred
        await maybeDeferred(port.stopListening)
        await notifier.stop()
        await maybeDeferred(transport.stop)
        await maybeDeferred(db.stopService)

    def _shutdown_deferred():
        from twisted.internet.defer import ensureDeferred
        return ensureDeferred(_shutdown())

    reactor.addSystemEventTrigger("before", "shutdown", _shutdown_deferred)
    if stat.S_ISFIFO(os.fstat(0).st_mode):
        reactor.callWhenRunning(reactor.addReader, ParentWatch(reactor, 0))
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
