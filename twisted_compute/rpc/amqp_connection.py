"""One AMQP connection (txamqp): its channels, publisher confirms, and the
rotation over the broker hosts of a cluster.

Publishes are persistent or transient as the caller says, and
publisher-confirmed (``confirm.select``; the broker's ``basic.ack`` /
``basic.nack`` frames reach :meth:`_Delegate.basic_ack` / ``basic_nack``,
which :meth:`_Connection.confirm` turns into the publisher's Deferreds).

txamqp traps handled here: txamqp only honours a field literally named
``nowait``, and 0-9-1 calls it ``no-wait``, so we never ask for no-wait
(txamqp would wait forever for an answer that never comes); cancelling a
txamqp invocation mid-flight would desynchronise its channel, so our
timeouts never cancel one (:class:`_Shared`); RabbitMQ reorders pipelined
synchronous methods, so they are sent one at a time
(:meth:`_Connection.sync`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_compute import exception
from twisted_compute.rpc.transport import BrokerAddress

if TYPE_CHECKING:
    from twisted_compute.rpc.amqp import AMQPTransport

# txamqp 0.8 still uses defer.returnValue everywhere; one warning per call
# would drown the logs.  Only warnings raised from txamqp's own modules.
warnings.filterwarnings(
    "ignore", message=r".*returnValue.*", category=DeprecationWarning,
    module=r"txamqp(\..*)?$")


from txamqp.client import TwistedDelegate  # noqa: E402
from txamqp.codec import Codec  # noqa: E402
from txamqp.content import Content  # noqa: E402
from txamqp.protocol import AMQClient  # noqa: E402


# txamqp 0.8 decodes only the S, I, F and t field types of a table.
# RabbitMQ sends others in message headers: a quorum queue adds
# ``x-delivery-count`` (``l``, int64) to every redelivered message, and
# dead-lettering adds arrays and timestamps.  An unknown type makes txamqp
# raise inside dataReceived and drop the whole connection, so a consumer
# would never get past a redelivery.  All of RabbitMQ's 0-9-1 field types
# (its errata), decoded here instead.
_FIXED = {b"b": "!b", b"B": "!B", b"s": "!h", b"u": "!H", b"I": "!i",
          b"i": "!I", b"l": "!q", b"f": "!f", b"d": "!d", b"T": "!Q"}


def _decode_value(codec: Codec, kind: bytes):
    if kind in _FIXED:
        return codec.unpack(_FIXED[kind])
    if kind == b"S":
        return codec.decode_longstr()
    if kind == b"x":
        return codec.decode_longbytes()
    if kind == b"t":
        return codec.decode_octet() != 0
    if kind == b"F":
        return _decode_table(codec)
    if kind == b"V":
        return None
    if kind == b"D":
        scale = codec.decode_octet()
        return codec.unpack("!i") / (10 ** scale)
    if kind == b"A":
        size = codec.decode_long()
        start, values = codec.nread, []
        while codec.nread - start < size:
            values.append(_decode_value(codec, codec.read(1)))
        return values
    raise ValueError(f"unknown AMQP field type {kind!r}")


def _decode_table(codec: Codec) -> dict:
    size = codec.decode_long()
    start, result = codec.nread, {}
    while codec.nread - start < size:
        key = codec.decode_shortstr()
        result[key] = _decode_value(codec, codec.read(1))
    return result


Codec.decode_table = _decode_table


class ConnectionLost(Exception):
    """The AMQP connection dropped before the broker confirmed a publish."""


class Nacked(exception.ServiceUnavailable):
    """The broker refused a publish (``basic.nack``): a quorum queue that
    lost its leader, or has no quorum, nacks what it could not commit.
    The publisher sends it again."""



class _Shared:
    """One result for many waiters.  Cancelling a waiter leaves the
    underlying Deferred alone (a cancelled txamqp invocation would
    desynchronise its channel)."""

    _unset = object()

    def __init__(self, d: defer.Deferred):
        self.result: Any = self._unset
        self.waiters: list[defer.Deferred] = []
        d.addBoth(self._fire)

    def _fire(self, result) -> None:
        self.result = result
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            self._give(w)
        return None  # consumed here: every waiter got its own copy

    def _give(self, w: defer.Deferred) -> None:
        if isinstance(self.result, Failure):
            w.errback(self.result)
        else:
            w.callback(self.result)

    @property
    def failed(self) -> bool:
        return isinstance(self.result, Failure)

    def wait(self) -> defer.Deferred:
        w = defer.Deferred(lambda w: self.waiters.remove(w)
                           if w in self.waiters else None)
        if self.result is self._unset:
            self.waiters.append(w)
        else:
            self._give(w)
        return w


class _Delegate(TwistedDelegate):
    """txamqp's delegate, plus deliveries straight to the transport and
    the publisher confirms the stock one drops."""

    def __init__(self, transport: "AMQPTransport"):
        super().__init__()
        self.transport = transport

    conn: "_Connection | None" = None  # set once the connection is made

    def basic_deliver(self, ch, msg):
        if self.conn is not None:
            self.transport._on_deliver(self.conn, ch, msg)

    def basic_ack(self, ch, msg):
        # A publisher confirm (after confirm.select): the stock
        # TwistedDelegate has no handler and would drop it.
        if self.conn is not None:
            self.conn.confirm(msg.delivery_tag, bool(msg.multiple), True)

    def basic_nack(self, ch, msg):
        if self.conn is not None:
            self.conn.confirm(msg.delivery_tag, bool(msg.multiple), False)

    def basic_cancel(self, ch, msg):
        # The broker cancelled a consumer (its queue was deleted): start
        # over on a new connection, which declares everything again.
        self.transport.log.warn(
            "the broker cancelled consumer {tag}; reconnecting",
            tag=msg.consumer_tag)
        self.client.transport.loseConnection()


class _Client(AMQClient):
    def channel_failed(self, channel, reason):
        # A channel error (e.g. a declaration the broker refused) leaves
        # the connection half-usable; drop it and start over.
        if not self.closed:
            self.delegate.transport.log.warn(
                "AMQP channel {id} failed: {reason}; reconnecting",
                id=channel.id, reason=reason.getErrorMessage())
            self.transport.loseConnection()


class _ClientFactory(Factory):
    def __init__(self, transport: "AMQPTransport"):
        self.transport = transport

    def buildProtocol(self, addr):
        t = self.transport
        return _Client(_Delegate(t), vhost=t.url.virtual_host, spec=t.spec,
                       heartbeat=t.heartbeat, clock=t.reactor)


@implementer(IStreamClientEndpoint)
class _BrokerRotation:
    """Connects to the broker hosts of a cluster in turn."""

    def __init__(self, reactor, hosts: tuple[BrokerAddress, ...],
                 timeout: float):
        self.reactor = reactor
        self.hosts = hosts
        self.timeout = timeout
        self.index = -1
        self.current = hosts[0]

    def connect(self, factory):
        self.index = (self.index + 1) % len(self.hosts)
        self.current = self.hosts[self.index]
        endpoint = HostnameEndpoint(self.reactor, self.current.host,
                                    self.current.port,
                                    timeout=max(1, int(self.timeout)))
        return endpoint.connect(factory)

    def __repr__(self):
        return "amqp://" + ",".join(f"{h.host}:{h.port}" for h in self.hosts)



@attrs.define(eq=False)
class _Connection:
    """One live AMQP connection and what hangs on it."""

    client: Any
    publisher: Any = None  # channel 1, confirm mode
    consumer: Any = None  # channel 2, qos
    published: int = 0  # delivery tags of the confirm channel
    unconfirmed: dict = attrs.Factory(dict)  # tag -> Deferred
    declared: dict = attrs.Factory(dict)  # name -> _Shared
    consumers: dict = attrs.Factory(dict)  # consumer tag -> _Consumer
    reply_tag: str | None = None
    lost: bool = False
    sync_lock: defer.DeferredLock = attrs.Factory(defer.DeferredLock)

    def sync(self, method: str, **kwargs) -> defer.Deferred:
        """A synchronous method (declare, bind, consume, qos, cancel) on
        the consumer channel, once the one before it was answered.  AMQP
        allows one outstanding synchronous request per channel, and
        RabbitMQ does reorder pipelined ones: ``consume-ok`` comes from
        the queue process, after the answer to a request sent later; with
        txamqp matching answers in order, the wrong caller would get it
        (``ValueError: consume-ok``) and the channel would stay out of
        step.  Topology is declared from concurrent coroutines (start-up,
        consumers, a message handler sending to a new topic), so they
        queue here."""
        return self.sync_lock.run(getattr(self.consumer, method), **kwargs)

    def publish(self, exchange: str, routing_key: str, body: bytes,
                properties: dict) -> defer.Deferred:
        """Publish and return a Deferred for the broker's confirm."""
        if self.lost:
            return defer.fail(ConnectionLost())
        self.published += 1
        tag = self.published
        confirmed = defer.Deferred(lambda d: self.unconfirmed.pop(tag, None))
        self.unconfirmed[tag] = confirmed
        sent = self.publisher.basic_publish(
            exchange=exchange, routing_key=routing_key,
            content=Content(body, properties=properties))
        sent.addErrback(lambda f: self.confirm(tag, False, f))
        return confirmed

    def confirm(self, tag: int, multiple: bool, ok, failure=None) -> None:
        tags = ([t for t in self.unconfirmed if t <= tag] if multiple
                else [tag])
        for t in sorted(tags):
            d = self.unconfirmed.pop(t, None)
            if d is None:
                continue
            if ok is True:
                d.callback(None)
            elif isinstance(ok, Failure):
                d.errback(ok)
            else:
                d.errback(Nacked(
                    reason="the broker refused (nacked) a message"))

    def fail_unconfirmed(self) -> None:
        pending, self.unconfirmed = self.unconfirmed, {}
        for d in pending.values():
            d.errback(ConnectionLost())
