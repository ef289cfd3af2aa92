"""The bus seam: one transport interface, picked by ``transport_url``.

A transport moves JSON objects (``dict``) between processes.  It knows
nothing about RPC envelopes (that is :mod:`twisted_compute.rpc.client` and
:mod:`twisted_compute.rpc.server`); it only knows topics, servers, fanout,
replies and timeouts.

Two implementations:

* ``local://`` -> :class:`twisted_compute.rpc.local.LocalTransport`, in one
  process (``compute-all`` and fast tests);
* ``rabbit://user:pass@host:port[,user:pass@host2:port]/vhost`` ->
  :class:`twisted_compute.rpc.amqp.AMQPTransport` (txamqp on RabbitMQ).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
from zope.interface import Attribute, Interface

from twisted_compute.config import DEFAULT_AMQP_SPEC  # noqa: F401

@attrs.frozen
class Target:
    """Where a message goes: every server of ``topic`` (work shared), or
    the one server named ``server``."""

    topic: str
    server: str | None = None

    @property
    def routing_key(self) -> str:
        return f"{self.topic}.{self.server}" if self.server else self.topic


@attrs.frozen
class BrokerAddress:
    host: str
    port: int
    user: str
    password: str = attrs.field(repr=False)


@attrs.frozen
class TransportURL:
    """A parsed ``transport_url``."""

    scheme: str
    hosts: tuple[BrokerAddress, ...] = ()
    virtual_host: str = "/"

    @classmethod
    def parse(cls, url: str) -> "TransportURL":
        if "://" not in url:
            raise ValueError(f"transport_url {url!r} has no scheme")
        scheme, rest = url.split("://", 1)
        scheme = scheme.lower()
        if scheme == "local":
            return cls("local")
        if scheme not in ("rabbit", "amqp"):
            raise ValueError(
                f"transport_url scheme {scheme!r} is not local or rabbit")
        netlocs, _, path = rest.partition("/")
        hosts = []
        for netloc in netlocs.split(","):
            if not netloc:
                continue
            parts = urlsplit("//" + netloc)
            try:
                port = parts.port or 5672
            except ValueError:
                raise ValueError(
                    f"transport_url {netloc!r}: bad port") from None
            hosts.append(BrokerAddress(
                host=parts.hostname or "127.0.0.1", port=port,
                user=unquote(parts.username or "guest"),
                password=unquote(parts.password or "guest")))
        if not hosts:
            hosts.append(BrokerAddress("127.0.0.1", 5672, "guest", "guest"))
        vhost = unquote(path.split("?", 1)[0]) or "/"
        return cls("rabbit", tuple(hosts), vhost)


class ITransport(Interface):
    """Moves JSON objects between the roles of the control plane.

    Every Deferred a transport hands out fires or fails in bounded time:
    a call gets its reply or :class:`MessagingTimeout`; a cast is
    confirmed, or fails with :class:`MessagingTimeout` /
    :class:`ServiceUnavailable`.
    """

    default_timeout = Attribute(
        "Seconds a call waits for its reply when none is given")

    def start():
        """Connect (where there is anything to connect to); Deferred."""

    def stop():
        """Stop consuming and disconnect; pending calls fail with
        ServiceUnavailable; Deferred."""

    def call(target, message, timeout=None):
        """Send ``message`` (a JSON object) to ``target`` (a
        :class:`Target`) and return a Deferred firing with the reply
        object, or failing with MessagingTimeout after ``timeout``
        seconds."""

    def cast(target, message, timeout=None):
        """Send ``message`` without waiting for a reply.  The Deferred
        fires once the message is safely handed over (publisher confirm
        on AMQP, at once locally)."""

    def fanout_cast(topic, message, timeout=None):
        """Send ``message`` to every server consuming ``topic``."""

    def consume(topic, handler, server=None, fanout=False):
        """Deliver messages of ``topic`` (or of ``topic.server`` when
        ``server`` is given, or the topic's fanout when ``fanout``) to
        ``handler(message) -> reply | Deferred[reply] | None``.

        Several consumers of one topic share its messages; each fanout
        consumer gets every fanout message.  For a call, the handler's
        result (a JSON object, or an :class:`EncodedReply`) is the
        reply.  A handler raising
        :class:`RejectMessage` has the message rejected (and its
        ``reply``, if any, sent).  Returns a Deferred firing with a
        consumer handle once consuming."""


@attrs.frozen
class EncodedReply:
    """A reply its handler already encoded (the JSON text of the reply
    object, as UTF-8): the transport sends these bytes as they are
    instead of encoding the reply a second time."""

    body: bytes


class RejectMessage(Exception):
    """Raised by a consumer's handler: the message is malformed; reject it
    (no requeue) and send ``reply`` to the caller if there is one."""

    def __init__(self, reason: str, reply: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


class RequeueMessage(Exception):
    """Raised by a consumer's handler: the message could not be handled
    now, for a reason that passes (the database is restarting); give it
    back to the queue after ``delay`` seconds, to this server or another.
    Nothing was done, so handling it again is safe."""

    def __init__(self, reason: str, delay: float = 1.0):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


def transport_for(conf, reactor, **kwargs) -> ITransport:
    """The transport that ``conf.transport_url`` names."""
    url = TransportURL.parse(conf.transport_url)
    if url.scheme == "local":
        from twisted_compute.rpc.local import LocalTransport
        return LocalTransport(
            reactor=reactor, default_timeout=conf.rpc_response_timeout,
            **kwargs)
    from twisted_compute.rpc.amqp import AMQPTransport
    return AMQPTransport.from_config(conf, reactor, url=url, **kwargs)
