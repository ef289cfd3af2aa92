"""The console proxy on the real reactor: tokens from the real DB, the
fake driver's consoles (serial echo, RFB 3.8 server), an autobahn
websocket client."""

from __future__ import annotations

import os
import struct
import types
from urllib.parse import urlencode

from autobahn.twisted.websocket import (
    WebSocketClientFactory, WebSocketClientProtocol)
from twisted.internet import defer, protocol, reactor, task
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from tests.base import make_conf, migrated_sqlite
from twisted_compute.console.proxy import ConsoleProxyFactory, NoVNCRoot
from twisted_compute.console.tap import TokenPurge
from twisted_compute.db.pool import DBService
from twisted_compute.virt import power_state
from twisted_compute.virt.fake import FakeDriver, FakeGuest


class Client(WebSocketClientProtocol):
    """Collects what the proxy sends; ``opened`` / ``closed`` fire."""

    def __init__(self):
        super().__init__()
        self.received = bytearray()
        self.opened = defer.Deferred()
        self.closed = defer.Deferred()
        self._waiting = []

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.received += payload
        self._check()

    def onClose(self, wasClean, code, reason):
        self.close_code = code
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"refused: {reason}"))
        if not self.closed.called:
            self.closed.callback((code, reason))

    def _check(self):
        for item in list(self._waiting):
            count, d = item
            if len(self.received) >= count:
                self._waiting.remove(item)
                data = bytes(self.received[:count])
                del self.received[:count]
                d.callback(data)

    def read(self, count: int, timeout: float = 5) -> defer.Deferred:
        d = defer.Deferred()
        self._waiting.append((count, d))
        self._check()
        return d.addTimeout(timeout, reactor)

    def read_until(self, marker: bytes, timeout: float = 5):
        async def wait():
            for _ in range(int(timeout * 20)):
                if marker in self.received:
                    at = self.received.index(marker) + len(marker)
                    data = bytes(self.received[:at])
                    del self.received[:at]
                    return data
                await task.deferLater(reactor, 0.05, lambda: None)
            raise AssertionError(f"{marker!r} not in {bytes(self.received)!r}")
        return defer.ensureDeferred(wait())


class ProxyTests(TestCase):
    timeout = 60

    def setUp(self):
        path = self.mktemp()
        os.makedirs(path)
        self.db = DBService(migrated_sqlite(path), reactor)
        self.db.startService()
        self.addCleanup(self.db.stopService)
        self.conf = make_conf(path, console={
            "max_connections_per_token": 2, "max_connections": 5,
            "allowed_origins": ["console.example"]},
            serial_console={"enabled": True})
        self.driver = FakeDriver(self.conf, reactor, host="h1")
        self.addCleanup(self._close_guests)
        self.serial = ConsoleProxyFactory(self.conf, reactor, self.db,
                                          ["serial"])
        self.novnc = ConsoleProxyFactory(self.conf, reactor, self.db,
                                         ["novnc"])
        for factory in (self.serial, self.novnc):
            # No handshake timers: txaio's batched timers outlive a test.
            factory.setProtocolOptions(openHandshakeTimeout=0,
                                       closeHandshakeTimeout=0)
        self.serial_port = reactor.listenTCP(0, self.serial,
                                             interface="127.0.0.1")
        self.addCleanup(self.serial_port.stopListening)
        self.novnc_port = reactor.listenTCP(
            0, Site(NoVNCRoot(self.novnc, "/usr/share/novnc")),
            interface="127.0.0.1")
        self.addCleanup(self.novnc_port.stopListening)

    def _close_guests(self):
        for guest in self.driver.guests.values():
            self.driver._close_consoles(guest)

    def guest(self, uuid):
        self.driver.guests[uuid] = FakeGuest(
            uuid=uuid, name=f"instance-{uuid}", internal_id=uuid,
            state=power_state.RUNNING, vcpus=1, memory_mb=64, disk_gb=1)
        return types.SimpleNamespace(uuid=uuid)

    async def token(self, uuid, console_type="serial", ttl=600):
        instance = self.guest(uuid) if uuid not in self.driver.guests \
            else types.SimpleNamespace(uuid=uuid)
        info = await self.driver.get_console(None, instance, console_type)
        token, _ = await self.db.console_auth_tokens.create(
            uuid, info, ttl, reactor.seconds())
        return token, info

    async def connect(self, port, query, origin=None, protocols=None):
        url = f"ws://127.0.0.1:{port.getHost().port}/?{urlencode(query)}"
        factory = WebSocketClientFactory(url, origin=origin,
                                         protocols=protocols)
        factory.protocol = Client
        factory.setProtocolOptions(openHandshakeTimeout=0,
                                   closeHandshakeTimeout=0)
        holder = {}

        def build(addr):
            client = Client()
            client.factory = factory
            holder["client"] = client
            return client
        factory.buildProtocol = build
        from twisted.internet.endpoints import TCP4ClientEndpoint
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1",
                                      port.getHost().port)
        await endpoint.connect(factory)
        client = holder["client"]
        self.addCleanup(lambda: client.transport.loseConnection()
                        if client.transport else None)
        return await client.opened

    async def refused(self, port, query, **kwargs):
        try:
            client = await self.connect(port, query, **kwargs)
        except ConnectionError as exc:
            return str(exc)
        raise AssertionError(f"connected: {client}")

    # --- serial -------------------------------------------------------

    async def test_serial_relay_both_ways(self):
        token, _ = await self.token("a")
        client = await self.connect(self.serial_port, {"token": token})
        banner = await client.read_until(b"\r\n")
        self.assertEqual(banner, b"fake serial console of a\r\n")
        client.sendMessage(b"hello guest\n", isBinary=True)
        self.assertEqual(await client.read_until(b"\n"), b"hello guest\n")
        client.sendMessage(b"text frame\n", isBinary=False)
        self.assertEqual(await client.read_until(b"\n"), b"text frame\n")

    async def test_bad_expired_and_other_type_tokens_refused(self):
        await self.refused(self.serial_port, {"token": "nope"})
        await self.refused(self.serial_port, {})
        token, _ = await self.token("a", ttl=1)
        await task.deferLater(reactor, 1.1, lambda: None)
        await self.refused(self.serial_port, {"token": token})
        vnc_token, _ = await self.token("b", console_type="novnc")
        await self.refused(self.serial_port, {"token": vnc_token})
        self.assertEqual(self.serial.connections, set())

    async def test_token_after_delete_refused(self):
        token, _ = await self.token("a")
        await self.db.console_auth_tokens.delete_for_instance("a")
        await self.refused(self.serial_port, {"token": token})

    async def test_token_of_a_cannot_reach_b(self):
        token_a, info_a = await self.token("a")
        _, info_b = await self.token("b")
        self.assertNotEqual(info_a.port, info_b.port)
        client = await self.connect(self.serial_port, {
            "token": token_a, "host": "127.0.0.1", "port": info_b.port,
            "path": f"/?port={info_b.port}"})
        self.assertEqual(await client.read_until(b"\r\n"),
                         b"fake serial console of a\r\n")

    async def test_origin(self):
        token, _ = await self.token("a")
        await self.refused(self.serial_port, {"token": token},
                           origin="http://evil.example")
        await self.refused(self.serial_port, {"token": token},
                           origin="garbage")
        ok = await self.connect(self.serial_port, {"token": token},
                                origin="http://127.0.0.1:6083")
        await ok.read_until(b"\r\n")
        ok2 = await self.connect(self.serial_port, {"token": token},
                                 origin="https://console.example")
        await ok2.read_until(b"\r\n")

    async def test_connection_limits(self):
        token, _ = await self.token("a")
        first = await self.connect(self.serial_port, {"token": token})
        await self.connect(self.serial_port, {"token": token})
        await self.refused(self.serial_port, {"token": token})
        # a closed connection frees its place
        first.sendClose()
        await first.closed
        for _ in range(40):
            if len(self.serial.connections) < 2:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        await self.connect(self.serial_port, {"token": token})
        # the total limit, across tokens
        for name in "bcd":
            other, _ = await self.token(name)
            await self.connect(self.serial_port, {"token": other})
        last, _ = await self.token("e")
        await self.refused(self.serial_port, {"token": last})

    async def test_guest_drop_closes_client_and_others_go_on(self):
        token_a, _ = await self.token("a")
        token_b, _ = await self.token("b")
        a = await self.connect(self.serial_port, {"token": token_a})
        b = await self.connect(self.serial_port, {"token": token_b})
        await a.read_until(b"\r\n")
        await b.read_until(b"\r\n")
        # guest a goes away: its consoles stop listening, its
        # connection is dropped
        guest = self.driver.guests.pop("a")
        self.driver._close_consoles(guest)
        for relay in list(self.serial.connections):
            if relay.record.instance_uuid == "a":
                relay.guest.transport.loseConnection()
        await a.closed
        b.sendMessage(b"still here\n", isBinary=True)
        self.assertEqual(await b.read_until(b"\n"), b"still here\n")
        # a client dropping does not disturb b either
        c = await self.connect(self.serial_port, {"token": token_b})
        c.transport.abortConnection()
        b.sendMessage(b"again\n", isBinary=True)
        self.assertEqual(await b.read_until(b"\n"), b"again\n")

    async def test_idle_timeout(self):
        self.serial.conf = self.conf.with_overrides(
            console={"idle_timeout": 0.5})
        token, _ = await self.token("a")
        client = await self.connect(self.serial_port, {"token": token})
        code, _ = await client.closed.addTimeout(5, reactor)
        self.assertEqual(code, 1000)

    async def test_purge(self):
        await self.token("a", ttl=1)
        await self.token("b", ttl=600)
        purge = TokenPurge(self.db, types.SimpleNamespace(
            seconds=lambda: reactor.seconds() + 2), 0)
        await purge.purge()
        count = await self.db.console_auth_tokens.purge_expired(
            reactor.seconds() + 601)
        self.assertEqual(count, 1)

    # --- VNC ----------------------------------------------------------

    async def test_novnc_negotiation_and_framebuffer(self):
        token, _ = await self.token("a", console_type="novnc")
        client = await self.connect(self.novnc_port, {"token": token},
                                    protocols=["binary"])
        self.assertEqual(await client.read(12), b"RFB 003.008\n")
        client.sendMessage(b"RFB 003.008\n", isBinary=True)
        self.assertEqual(await client.read(2), b"\x01\x01")
        client.sendMessage(b"\x01", isBinary=True)
        self.assertEqual(await client.read(4), b"\x00\x00\x00\x00")
        client.sendMessage(b"\x01", isBinary=True)  # ClientInit, shared
        width, height = struct.unpack("!HH", await client.read(4))
        self.assertEqual((width, height), (320, 200))
        await client.read(16)
        name_length = struct.unpack("!I", await client.read(4))[0]
        self.assertEqual(await client.read(name_length), b"instance-a")
        client.sendMessage(struct.pack("!BxHHHH", 3, 0, 0, width, height),
                           isBinary=True)
        header = await client.read(16)
        self.assertEqual(header[:4], b"\x00\x00\x00\x01")
        pixels = await client.read(width * height * 4)
        self.assertGreater(len(set(pixels)), 2)  # not blank
        self.assertEqual(pixels[:4], b"\xff\xff\xff\x00")  # white bar

    async def test_novnc_serves_the_web_client(self):
        import treq
        from twisted.web.client import HTTPConnectionPool
        pool = HTTPConnectionPool(reactor, persistent=False)
        url = f"http://127.0.0.1:{self.novnc_port.getHost().port}"
        response = await treq.get(url + "/vnc_auto.html", pool=pool)
        body = await response.text()
        if not os.path.isdir("/usr/share/novnc"):
            self.assertEqual(response.code, 404)
            return
        self.assertEqual(response.code, 200)
        self.assertIn("noVNC", body)
        # Nova's page name is the page that connects at once
        self.assertIn("readQueryVariable('path'", body)
        response = await treq.get(url + "/core/rfb.js", pool=pool)
        self.assertEqual(response.code, 200)
        await response.content()

    async def test_novnc_refuses_serial_tokens(self):
        token, _ = await self.token("a")
        await self.refused(self.novnc_port, {"token": token})


class BrowserTests(TestCase):
    """noVNC in headless Chromium, through the proxy, to the fake
    driver's RFB server."""

    timeout = 120
    _close_guests = ProxyTests._close_guests
    guest = ProxyTests.guest
    token = ProxyTests.token

    def setUp(self):
        from tests.console.browser import require_browser
        require_browser()
        ProxyTests.setUp(self)

    async def test_novnc_in_chromium(self):
        from twisted.internet.threads import deferToThread
        from tests.console.browser import novnc_screenshot
        token, _ = await self.token("a", console_type="novnc")
        port = self.novnc_port.getHost().port
        url = (f"http://127.0.0.1:{port}/vnc_auto.html?"
               + urlencode({"path": f"?token={token}"}))
        shot = os.path.abspath(os.path.join(self.mktemp(), "novnc.png"))
        status, colours = await deferToThread(novnc_screenshot, url, shot)
        self.assertEqual(status, "Connected to instance-a")
        self.assertGreater(colours, 2)
        self.assertGreater(os.path.getsize(shot), 1000)


class Flood(protocol.Protocol):
    """A guest console that writes as fast as its transport takes it (a
    push producer of its own transport)."""

    def __init__(self, sent):
        self.sent = sent
        self.paused = False
        self.loop = None

    def connectionMade(self):
        self.transport.registerProducer(self, True)
        self.loop = task.LoopingCall(self._write)
        self.loop.start(0.001)

    def _write(self):
        while not self.paused and self.transport is not None:
            self.transport.write(b"x" * 65536)
            self.sent[0] += 65536
            if self.sent[0] % (1 << 22) == 0:
                break  # let the reactor breathe

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False

    def stopProducing(self):
        self.paused = True

    def connectionLost(self, reason=protocol.connectionDone):
        if self.loop is not None and self.loop.running:
            self.loop.stop()


class BackPressureTests(TestCase):
    timeout = 60

    setUp = ProxyTests.setUp
    _close_guests = ProxyTests._close_guests
    connect = ProxyTests.connect

    async def test_slow_client_pauses_the_guest(self):
        from twisted_compute.objects.console import ConsoleInfo
        sent = [0]
        factory = protocol.Factory.forProtocol(lambda: Flood(sent))
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        info = ConsoleInfo(console_type="serial", host="127.0.0.1",
                           port=listening.getHost().port)
        token, _ = await self.db.console_auth_tokens.create(
            "flood", info, 600, reactor.seconds())
        client = await self.connect(self.serial_port, {"token": token})
        client.transport.pauseProducing()  # the client stops reading
        await task.deferLater(reactor, 1.5, lambda: None)
        stalled = sent[0]
        await task.deferLater(reactor, 0.5, lambda: None)
        # The guest is held back: nothing more is taken from it, and what
        # was taken is bounded by socket buffers and one chunk per hop,
        # not by the time the client was away.
        self.assertEqual(sent[0], stalled)
        self.assertLess(stalled, 32 * 1024 * 1024)
        (relay,) = self.serial.connections
        self.assertLess(len(relay.transport._tempDataBuffer), 64)
        client.transport.resumeProducing()
        await task.deferLater(reactor, 0.5, lambda: None)
        self.assertGreater(sent[0], stalled)
        self.assertGreater(len(client.received), 0)
        client.transport.abortConnection()
        await task.deferLater(reactor, 0.2, lambda: None)
