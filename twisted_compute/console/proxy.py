"""The console proxy: autobahn websocket servers that check a console
token and relay bytes to the console port stored with it.

Per connection:

* the token (``?token=``) must be known and unexpired, and of a console
  type this listener serves (noVNC tokens on the noVNC port, serial
  tokens on the serial port);
* a browser's ``Origin`` must name the proxy's own host (the request's
  ``Host``) or one of ``[console] allowed_origins``; a client without
  ``Origin`` is not a browser and is let through;
* at most ``[console] max_connections`` in all and
  ``max_connections_per_token`` per token;
* the proxy connects only to the host and port recorded with the token
  (nothing the client sends chooses them);
* bytes are relayed both ways with back-pressure: each side's transport
  is the other's streaming producer, so a slow reader pauses the other
  side's reads instead of filling a buffer;
* either side closing closes the other; ``idle_timeout`` seconds
  without a byte closes both.

For noVNC, the proxy does the RFB security negotiation with the guest's
VNC server (:mod:`twisted_compute.console.rfb`) before relaying.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from urllib.parse import urlparse

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import (
    WebSocketServerFactory, WebSocketServerProtocol)
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import defer, endpoints, protocol
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.static import File

from twisted_compute import exception
from twisted_compute.console import rfb
from twisted_compute.log import Logger

log = Logger()


class GuestSide(protocol.Protocol):
    """The proxy's connection to a guest's console port."""

    def __init__(self, peer: "ConsoleProxyProtocol"):
        self.peer = peer

    def dataReceived(self, data: bytes):
        self.peer.from_guest(data)

    def connectionLost(self, reason=protocol.connectionDone):
        self.peer.guest_lost()


class ConsoleProxyProtocol(WebSocketServerProtocol):
    log = Logger()

    guest = None
    record = None
    token_key = None
    negotiating = False
    closed = False
    _idle_call = None

    # --- handshake ----------------------------------------------------

    def onConnect(self, request):
        return defer.ensureDeferred(self._check(request))

    async def _check(self, request):
        factory = self.factory
        if len(factory.connections) >= factory.conf.console.max_connections:
            raise ConnectionDeny(503, "Too many console connections")
        check_origin(request.headers.get("host", ""),
                     request.headers.get("origin"),
                     factory.conf.console.allowed_origins)
        tokens = request.params.get("token") or []
        if len(tokens) != 1 or not tokens[0]:
            raise ConnectionDeny(403, "The token is missing")
        token = tokens[0]
        try:
            record = await factory.db.console_auth_tokens.validate(
                token, factory.clock.seconds())
        except exception.InvalidToken:
            raise ConnectionDeny(
                403, "The token is invalid or has expired") from None
        if record.console_type not in factory.console_types:
            raise ConnectionDeny(403, "The token is for another console")
        key = hashlib.sha256(token.encode()).hexdigest()
        limit = factory.conf.console.max_connections_per_token
        if factory.per_token[key] >= limit:
            raise ConnectionDeny(
                429, "Too many connections with this token")
        if len(factory.connections) >= factory.conf.console.max_connections:
            raise ConnectionDeny(503, "Too many console connections")
        self.record = record
        self.token_key = key
        factory.per_token[key] += 1
        factory.connections.add(self)
        if "binary" in request.protocols:
            return "binary"
        return None

    # --- open: connect to the guest -----------------------------------

    def onOpen(self):
        self.transport.pauseProducing()  # until the guest answers
        self._touch()
        factory = self.factory
        endpoint = endpoints.TCP4ClientEndpoint(
            factory.reactor, self.record.host, self.record.port,
            timeout=factory.conf.console.connect_timeout)
        self.guest_reader = rfb.Reader()
        self.tenant_reader = rfb.Reader()
        d = endpoints.connectProtocol(endpoint, GuestSide(self))
        d.addCallbacks(self._guest_connected, self._guest_failed)

    def _guest_failed(self, failure):
        self.log.warn("console of {uuid}: cannot reach {host}:{port}: "
                      "{why}", uuid=self.record.instance_uuid,
                      host=self.record.host, port=self.record.port,
                      why=failure.getErrorMessage())
        self._close(1011, "The console is not reachable")

    def _guest_connected(self, guest: GuestSide):
        if self.closed:
            guest.transport.loseConnection()
            return
        self.guest = guest
        self.transport.resumeProducing()
        if self.record.console_type == "novnc":
            self.negotiating = True
            d = defer.ensureDeferred(rfb.negotiate(
                self.tenant_reader, self._send_tenant, self.guest_reader,
                guest.transport.write, self.factory.conf.vnc.auth_schemes))
            d.addTimeout(self.factory.conf.console.connect_timeout,
                         self.factory.reactor)
            d.addCallbacks(self._negotiated, self._negotiation_failed)
        else:
            pending = self.tenant_reader.rest()
            if pending:
                guest.transport.write(pending)
            self._relay()

    def _negotiated(self, _):
        self.negotiating = False
        pending_guest = self.guest_reader.rest()
        pending_tenant = self.tenant_reader.rest()
        if pending_tenant:
            self.guest.transport.write(pending_tenant)
        if pending_guest:
            self._send_tenant(pending_guest)
        self._relay()

    def _negotiation_failed(self, failure):
        self.log.warn("console of {uuid}: {why}",
                      uuid=self.record.instance_uuid,
                      why=failure.getErrorMessage())
        self._close(1011, "VNC security negotiation failed")

    def _relay(self):
        """Each transport becomes the other's streaming producer."""
        ws, guest = self.transport, self.guest.transport
        for consumer, producer in ((ws, guest), (guest, ws)):
            try:
                consumer.unregisterProducer()
            except Exception:  # noqa: BLE001 - none was registered
                pass
            consumer.registerProducer(producer, True)

    # --- bytes --------------------------------------------------------

    def _send_tenant(self, data: bytes) -> None:
        self.sendMessage(data, isBinary=True)

    def onMessage(self, payload, isBinary):
        if self.closed:
            return
        self._touch()
        if self.guest is None:
            self.tenant_reader.feed(payload)
        elif self.negotiating:
            self.tenant_reader.feed(payload)
        else:
            self.guest.transport.write(payload)

    def from_guest(self, data: bytes) -> None:
        if self.closed or self.state != self.STATE_OPEN:
            return  # the client has gone; the guest side is being closed
        self._touch()
        if self.negotiating:
            self.guest_reader.feed(data)
        else:
            self._send_tenant(data)

    # --- idle ---------------------------------------------------------

    def _touch(self):
        self.last_activity = self.factory.reactor.seconds()
        timeout = self.factory.conf.console.idle_timeout
        if timeout and self._idle_call is None:
            self._idle_call = self.factory.reactor.callLater(
                timeout, self._idle_check)

    def _idle_check(self):
        self._idle_call = None
        timeout = self.factory.conf.console.idle_timeout
        idle = self.factory.reactor.seconds() - self.last_activity
        if idle >= timeout:
            self._close(1000, "Idle timeout")
        else:
            self._idle_call = self.factory.reactor.callLater(
                timeout - idle, self._idle_check)

    # --- closing ------------------------------------------------------

    def guest_lost(self):
        if self.negotiating:
            self.guest_reader.fail("the VNC server closed the connection")
        self._close(1000, "The console closed")

    def _close(self, code, reason):
        if not self.closed:
            self.closed = True
            # autobahn drops a client that does not answer the close
            # within closeHandshakeTimeout
            self.sendClose(code, reason)
        self._release()

    def onClose(self, wasClean, code, reason):
        self.closed = True
        self._release()
        if self.negotiating:
            self.tenant_reader.fail("the client closed the connection")

    def _release(self):
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.cancel()
        self._idle_call = None
        guest, self.guest = self.guest, None
        if guest is not None and guest.transport is not None:
            guest.transport.loseConnection()
        factory = self.factory
        if self in factory.connections:
            factory.connections.discard(self)
            factory.per_token[self.token_key] -= 1
            if factory.per_token[self.token_key] <= 0:
                del factory.per_token[self.token_key]


def check_origin(host_header: str, origin: str | None,
                 allowed_origins) -> None:
    """Refuse a browser whose ``Origin`` names neither the proxy's own
    host nor an allowed one (Nova's rule); no ``Origin`` is not a
    browser."""
    if origin is None:
        return
    parsed = urlparse(origin)
    if not parsed.hostname or not parsed.scheme:
        raise ConnectionDeny(403, "Origin header not valid.")
    expected = urlparse("//" + host_header).hostname if host_header else None
    if parsed.hostname not in {expected, *allowed_origins}:
        raise ConnectionDeny(403,
                             "Origin header does not match this host.")


class ConsoleProxyFactory(WebSocketServerFactory):
    """One listener's websocket server: ``console_types`` are the token
    types it accepts."""

    protocol = ConsoleProxyProtocol

    def __init__(self, conf, reactor, db, console_types):
        super().__init__()
        self.conf = conf
        self.reactor = reactor
        self.clock = reactor
        self.db = db
        self.console_types = frozenset(console_types)
        self.connections: set[ConsoleProxyProtocol] = set()
        self.per_token: Counter = Counter()
        # Relayed chunks go out as they come; noVNC reads binary frames.
        self.setProtocolOptions(
            openHandshakeTimeout=conf.console.connect_timeout,
            closeHandshakeTimeout=5, failByDrop=False,
            maxFramePayloadSize=1 << 20, maxMessagePayloadSize=1 << 20)


class NoVNCRoot(Resource):
    """The noVNC listener's HTTP side: a websocket upgrade goes to the
    proxy, anything else is a file of the noVNC web client."""

    isLeaf = True

    def __init__(self, factory: ConsoleProxyFactory, novnc_path: str):
        super().__init__()
        self.websocket = WebSocketResource(factory)
        self.novnc_path = novnc_path
        self.files = File(novnc_path) if os.path.isdir(novnc_path) else None

    def render(self, request):
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if upgrade == b"websocket":
            return self.websocket.render(request)
        if self.files is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (f"The noVNC web client is not installed at "
                    f"{self.novnc_path} ([vnc] novnc_path)\n").encode()
        if request.postpath == [b"vnc_auto.html"]:
            # Nova's page name: the page that connects at once, which
            # noVNC 1.x calls vnc_lite.html.
            request.postpath = [b"vnc_lite.html"]
        request.prepath, request.postpath = [], list(request.postpath)
        return getChildForRequest(self.files, request).render(request)
