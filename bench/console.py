"""Console relay figures: MB/s through one serial console connection, and
the console proxy's CPU for 200 idle connections.

    .venv/bin/python bench/console.py   # --seconds 5 --chunk 65536 --idle 200

One process holds the proxy (serial listener, real SQLite tokens), the
fake driver's serial echo (the "guest") and an autobahn websocket client
that sends chunks and reads the echo back, with at most 4 chunks in
flight.  The relay figure counts bytes echoed back (each byte crosses the
proxy twice).  The idle figure is the process's CPU seconds per wall
second while ``--idle`` connections are open and silent: client, proxy
and echo are all in it, so it bounds the proxy's own from above.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from autobahn.twisted.websocket import (  # noqa: E402
    WebSocketClientFactory, WebSocketClientProtocol)
from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Client(WebSocketClientProtocol):
    def __init__(self):
        super().__init__()
        self.opened = defer.Deferred()
        self.received = 0
        self.on_data = None

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.received += len(payload)
        if self.on_data is not None:
            self.on_data()


async def connect(port: int, token: str) -> Client:
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/?token={token}")
    factory.protocol = Client
    holder = {}
    original = factory.buildProtocol

    def build(addr):
        holder["c"] = original(addr)
        return holder["c"]
    factory.buildProtocol = build
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    return await holder["c"].opened


async def main(args):
    from tests.base import make_conf, migrated_sqlite
    from twisted_compute.console.proxy import ConsoleProxyFactory
    from twisted_compute.db.pool import DBService
    from twisted_compute.virt import power_state
    from twisted_compute.virt.fake import FakeDriver, FakeGuest

    path = tempfile.mkdtemp(prefix="bench-console-")
    db = DBService(migrated_sqlite(path), reactor)
    db.startService()
    conf = make_conf(path, serial_console={"enabled": True}, console={
        "max_connections": args.idle + 10,
        "max_connections_per_token": args.idle + 10, "idle_timeout": 0})
    driver = FakeDriver(conf, reactor, host="bench")
    driver.guests["g"] = FakeGuest(
        uuid="g", name="g", internal_id="g", state=power_state.RUNNING,
        vcpus=1, memory_mb=1, disk_gb=1)
    info = await driver.get_console(None, types.SimpleNamespace(uuid="g"),
                                    "serial")
    token, _ = await db.console_auth_tokens.create("g", info, 3600,
                                                   reactor.seconds())
    factory = ConsoleProxyFactory(conf, reactor, db, ["serial"])
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    number = port.getHost().port

    client = await connect(number, token)
    await task.deferLater(reactor, 0.2, lambda: None)
    client.received = 0
    chunk = os.urandom(args.chunk)
    sent = [0]
    in_flight = 4

    def pump():
        while client.on_data is not None and \
                sent[0] - client.received < in_flight * args.chunk:
            client.sendMessage(chunk, isBinary=True)
            sent[0] += len(chunk)

    client.on_data = pump
    start, cpu0 = time.monotonic(), cpu()
    pump()
    await task.deferLater(reactor, args.seconds, lambda: None)
    elapsed, used = time.monotonic() - start, cpu() - cpu0
    client.on_data = None
    print(f"serial relay: {client.received / elapsed / 1e6:.1f} MB/s "
          f"echoed through one connection ({args.chunk} B chunks, "
          f"{used / elapsed:.2f} CPU-s/s for proxy+client+echo)")
    client.dropConnection(abort=True)

    clients = [await connect(number, token) for _ in range(args.idle)]
    await task.deferLater(reactor, 1, lambda: None)
    start, cpu0 = time.monotonic(), cpu()
    await task.deferLater(reactor, args.idle_seconds, lambda: None)
    elapsed, used = time.monotonic() - start, cpu() - cpu0
    print(f"idle: {len(factory.connections)} open connections, "
          f"{used / elapsed * 100:.2f}% of one core over {elapsed:.0f} s")
    for c in clients:
        c.dropConnection(abort=True)
    port.stopListening()
    db.stopService()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--chunk", type=int, default=65536)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10)
    args = parser.parse_args()
    failure = []

    def run():
        d = defer.ensureDeferred(main(args))
        d.addErrback(failure.append)
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(run)
    reactor.run()
    if failure:
        failure[0].printTraceback()
        sys.exit(1)
