"""Nova's versioned notifications: what every role process emits about
instances and services (:mod:`.notifier`, :mod:`.payloads`).

A process makes one :class:`Notifier` with :func:`make_notifier`, runs it
with :class:`NotifierService` (started after the bus, stopped before it),
and gives each of its roles a :class:`Publisher`
(``notifier.prepare("nova-compute:<host>")``).  Components hold
:data:`NOOP` until they are given one.
"""

from __future__ import annotations

from twisted.application import service

from twisted_compute.notifications.notifier import (
    ERROR, INFO, NOOP, MemorySink, Notifier, Published, Publisher,
    TransportSink)

#: ``[notifications] notification_format`` values that emit versioned
#: notifications.
VERSIONED_FORMATS = ("versioned", "both")


def publisher_id(binary: str, host: str) -> str:
    """Nova's ``publisher_id`` of a service: ``nova-compute:<host>``."""
    return f"{binary}:{host}"


def make_notifier(conf, reactor, rpc_transport=None) -> Notifier:
    """The notifier ``conf`` asks for: no drivers (or only ``noop``), or
    a format without versioned notifications, makes one that emits
    nothing.  Otherwise the sink follows ``[oslo_messaging_notifications]
    transport_url`` (default: ``[DEFAULT] transport_url``): ``local://``
    is the in-process :class:`MemorySink`; a ``rabbit://`` URL equal to
    the RPC one reuses ``rpc_transport``, any other gets an AMQP
    transport of its own.  A bad URL stops the process (SystemExit
    naming the option)."""
    notifications = conf.notifications
    oslo = conf.oslo_messaging_notifications
    drivers = [d for d in oslo.driver if d != "noop"]
    if (notifications.notification_format not in VERSIONED_FORMATS
            or not drivers):
        return Notifier(reactor, None, drivers=())
    sink = None
    if any(d != "log" for d in drivers):
        sink = _sink(conf, reactor, rpc_transport)
    return Notifier(reactor, sink, drivers=drivers,
                    topics=notifications.versioned_notifications_topics,
                    queue_size=notifications.notification_queue_size)


def _sink(conf, reactor, rpc_transport):
    from twisted_compute.rpc.transport import TransportURL

    option = "[oslo_messaging_notifications] transport_url"
    url_text = conf.oslo_messaging_notifications.transport_url
    if not url_text:
        option, url_text = "[DEFAULT] transport_url", conf.transport_url
    try:
        url = TransportURL.parse(url_text)
    except ValueError as exc:
        raise SystemExit(f"twisted-compute: {option}: {exc}") from None
    if url.scheme == "local":
        return MemorySink(conf.notifications.notification_queue_size)
    if (rpc_transport is not None and url_text == conf.transport_url
            and hasattr(rpc_transport, "exchange")):
        return TransportSink(rpc_transport, owned=False)
    from twisted_compute.rpc.amqp import AMQPTransport
    return TransportSink(AMQPTransport.from_config(conf, reactor, url=url),
                         owned=True)


class NotifierService(service.Service):
    """Runs a :class:`Notifier`: started after the bus transport (the
    sink may be the RPC transport), stopped before it."""

    name = "notifier"

    def __init__(self, notifier: Notifier):
        self.notifier = notifier

    def startService(self):
        super().startService()
        self.notifier.start()

    def stopService(self):
        super().stopService()
        return self.notifier.stop()


__all__ = ["ERROR", "INFO", "NOOP", "MemorySink", "Notifier",
           "NotifierService", "Published", "Publisher", "TransportSink",
           "VERSIONED_FORMATS", "make_notifier", "publisher_id"]
