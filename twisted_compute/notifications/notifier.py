"""The notifier: Nova's versioned notifications, sent without ever
holding up the action they tell about.

:meth:`Notifier.notify` builds the message and puts it in a bounded queue
of pending notifications; it never raises and never waits.  A drain loop
publishes the queue, in order, in batches, through the sink:

* :class:`TransportSink`: the AMQP transport of the notifications (the
  RPC one when ``[oslo_messaging_notifications] transport_url`` is unset,
  or one of its own), which publishes with publisher confirms to the
  topic exchange ``[DEFAULT] control_exchange`` with routing key
  ``<topic>.<priority>`` (``versioned_notifications.info``), declaring a
  durable queue of that name bound to it, as oslo.messaging does;
* :class:`MemorySink`: in process (``compute-all`` on the local bus, and
  unit tests), keeping the last notifications.

What the broker did not confirm goes back to the head of the queue and is
tried again after ``retry_delay``; when the broker stays away long enough
for the queue to fill, the oldest notifications are dropped, with a
warning in the log (at most one every ``warn_interval`` seconds).

The message is oslo.messaging's: ``message_id``, ``publisher_id``
(``nova-compute:<host>``), ``event_type``, ``priority`` (``INFO``,
``ERROR``), ``payload`` and ``timestamp``, plus the request context as
``_context_*`` keys and ``_unique_id``; driver ``messagingv2`` sends it
inside the 2.0 envelope ``{"oslo.version": "2.0", "oslo.message":
"<the message as JSON text>"}``, driver ``messaging`` sends it bare.
"""

from __future__ import annotations

import collections
import datetime
import json
import uuid
from typing import Any, Callable, Iterable

import attrs
from twisted.internet import defer, task

from twisted_compute.log import Logger
from twisted_compute.notifications import payloads

INFO = "INFO"
ERROR = "ERROR"
WIRE_DRIVERS = ("messagingv2", "messaging")


@attrs.frozen
class Published:
    """One notification as it went on the wire."""

    routing_key: str
    body: dict[str, Any]

    @property
    def message(self) -> dict[str, Any]:
        """The oslo message inside (unwrapped from the 2.0 envelope)."""
        if "oslo.message" in self.body:
            return json.loads(self.body["oslo.message"])
        return self.body


class MemorySink:
    """Keeps the last ``limit`` notifications in this process."""

    synchronous = True

    def __init__(self, limit: int = 10000):
        self.published: collections.deque[Published] = collections.deque(
            maxlen=limit)

    def publish(self, routing_key: str, body: dict) -> defer.Deferred:
        self.published.append(Published(routing_key, body))
        return defer.succeed(None)

    def messages(self) -> list[dict[str, Any]]:
        """The oslo messages kept, oldest first."""
        return [p.message for p in self.published]

    def event_types(self) -> list[str]:
        return [m["event_type"] for m in self.messages()]

    def clear(self) -> None:
        self.published.clear()

    def start(self):
        return defer.succeed(None)

    def stop(self):
        return defer.succeed(None)


class TransportSink:
    """Publishes through a bus transport (:class:`ITransport`): a cast to
    the routing key, confirmed by the broker.  An ``owned`` transport is
    started and stopped with the notifier."""

    synchronous = False

    def __init__(self, transport, owned: bool = False,
                 timeout: float = 10.0):
        self.transport = transport
        self.owned = owned
        self.timeout = timeout

    def publish(self, routing_key: str, body: dict) -> defer.Deferred:
        from twisted_compute.rpc.transport import Target
        return self.transport.cast(Target(routing_key), body,
                                   timeout=self.timeout)

    def start(self):
        if self.owned:
            return defer.maybeDeferred(self.transport.start)
        return defer.succeed(None)

    def stop(self):
        if self.owned:
            return defer.maybeDeferred(self.transport.stop)
        return defer.succeed(None)


def _context_fields(context) -> dict[str, Any]:
    if context is None:
        return {}
    to_dict = getattr(context, "to_dict", None)
    values = to_dict() if callable(to_dict) else dict(context)
    return {f"_context_{key}": value for key, value in values.items()}


class Notifier:
    """One per process; :meth:`prepare` gives each role its publisher."""

    log = Logger()

    def __init__(self, clock, sink=None, drivers: Iterable[str] = (),
                 topics: Iterable[str] = ("versioned_notifications",),
                 queue_size: int = 10000, retry_delay: float = 1.0,
                 batch: int = 50, stop_timeout: float = 2.0,
                 warn_interval: float = 30.0,
                 now: Callable[[], datetime.datetime] | None = None):
        self.clock = clock
        self.sink = sink
        self.drivers = tuple(drivers)
        self.topics = tuple(topics)
        self.queue_size = queue_size
        self.retry_delay = retry_delay
        self.batch = batch
        self.stop_timeout = stop_timeout
        self.warn_interval = warn_interval
        self._now = now
        self.pending: collections.deque[Published] = collections.deque()
        #: Notifications dropped because the queue was full (counter).
        self.dropped = 0
        #: Notifications the sink confirmed (counter).
        self.sent = 0
        self._running = False
        self._draining: defer.Deferred | None = None
        self._sleep: defer.Deferred | None = None
        self._last_warning: dict[str, float] = {}

    @classmethod
    def noop(cls, clock=None) -> "Notifier":
        """A notifier that emits nothing."""
        return cls(clock, None, drivers=())

    @property
    def enabled(self) -> bool:
        """Whether anything is emitted (a payload is built only then)."""
        return bool(self.drivers)

    def prepare(self, publisher_id: str) -> "Publisher":
        return Publisher(self, publisher_id)

    # --- emitting ------------------------------------------------------

    def _timestamp(self) -> str:
        if self._now is not None:
            now = self._now()
        else:
            now = datetime.datetime.fromtimestamp(
                self.clock.seconds(), datetime.timezone.utc
            ).replace(tzinfo=None)
        # oslo.messaging's form: a naive UTC datetime as str() gives it.
        return now.strftime("%Y-%m-%d %H:%M:%S.%f")

    def notify(self, context, publisher_id: str, event_type: str,
               payload: dict[str, Any], priority: str = INFO) -> None:
        """Queue one notification; never raises, never waits."""
        if not self.drivers:
            return
        try:
            message = {
                "message_id": str(uuid.uuid4()),
                "publisher_id": publisher_id,
                "event_type": event_type,
                "priority": priority,
                "payload": payload,
                "timestamp": self._timestamp(),
            }
            message.update(_context_fields(context))
            message["_unique_id"] = uuid.uuid4().hex
            text = None
            for driver in self.drivers:
                if driver == "log":
                    self.log.info("notification {event_type} from "
                                  "{publisher_id}: {message}",
                                  event_type=event_type,
                                  publisher_id=publisher_id,
                                  message=json.dumps(message))
                    continue
                if driver not in WIRE_DRIVERS or self.sink is None:
                    continue
                if driver == "messagingv2":
                    if text is None:
                        text = json.dumps(message)
                    body = {"oslo.version": "2.0", "oslo.message": text}
                else:
                    body = message
                for topic in self.topics:
                    self._enqueue(Published(
                        f"{topic}.{priority.lower()}", body))
        except Exception:
            self.log.failure("could not build notification {event_type}",
                             event_type=event_type)

    def _enqueue(self, item: Published) -> None:
        if self.sink.synchronous:
            # Nothing to wait for: straight to the sink.
            self.sink.publish(item.routing_key, item.body)
            self.sent += 1
            return
        self.pending.append(item)
        self._trim()
        self._kick()

    def _trim(self) -> None:
        over = len(self.pending) - self.queue_size
        if over > 0:
            for _ in range(over):
                self.pending.popleft()
            self.dropped += over
            self._warn("dropped",
                       "dropped {count} notifications (the oldest): the "
                       "queue of {size} is full, the broker is away; "
                       "{dropped} dropped since start", count=over,
                       size=self.queue_size, dropped=self.dropped)

    def _warn(self, kind: str, fmt: str, **kwargs) -> None:
        """A warning of ``kind``, at most one every ``warn_interval``."""
        now = self.clock.seconds()
        last = self._last_warning.get(kind)
        if last is None or now - last >= self.warn_interval:
            self._last_warning[kind] = now
            self.log.warn(fmt, **kwargs)

    # --- draining ------------------------------------------------------

    def _kick(self) -> None:
        if self._running and self.pending and self._draining is None:
            self._draining = task.deferLater(self.clock, 0, lambda: None)
            self._draining.addCallback(
                lambda _: defer.ensureDeferred(self._drain()))
            self._draining.addErrback(lambda f: f.trap(defer.CancelledError))
            self._draining.addErrback(lambda f: self.log.failure(
                "the notification drain failed", f))
            self._draining.addBoth(self._drained)

    def _drained(self, _):
        self._draining = None
        self._kick()  # what came in meanwhile

    async def _drain(self) -> None:
        while self._running and self.pending:
            batch = [self.pending.popleft()
                     for _ in range(min(self.batch, len(self.pending)))]
            results = await defer.DeferredList(
                [defer.maybeDeferred(self.sink.publish, item.routing_key,
                                     item.body) for item in batch],
                consumeErrors=True)
            failed = [item for item, (ok, _) in zip(batch, results)
                      if not ok]
            self.sent += len(batch) - len(failed)
            if not failed:
                continue
            reason = next(r for ok, r in results if not ok)
            self._warn("failed", "could not send {count} notifications "
                       "({error}); retrying", count=len(failed),
                       error=reason.getErrorMessage())
            self.pending.extendleft(reversed(failed))
            self._trim()
            if not self._running:
                return
            self._sleep = task.deferLater(self.clock, self.retry_delay,
                                          lambda: None)
            try:
                await self._sleep
            finally:
                self._sleep = None

    def start(self) -> defer.Deferred:
        self._running = True
        d = self.sink.start() if self.sink is not None else \
            defer.succeed(None)
        self._kick()
        return d

    async def _stop(self) -> None:
        self._running = False
        if self._sleep is not None:
            self._sleep.cancel()
        draining = self._draining
        if draining is not None:
            # The batch under way, bounded.
            waiter: defer.Deferred = defer.Deferred()
            draining.addBoth(
                lambda _: None if waiter.called else waiter.callback(None))
            waiter.addTimeout(self.stop_timeout, self.clock)
            try:
                await waiter
            except defer.TimeoutError:
                pass
        if self.pending:
            self.log.warn("stopping with {count} notifications unsent",
                          count=len(self.pending))
        if self.sink is not None:
            await self.sink.stop()

    def stop(self) -> defer.Deferred:
        return defer.ensureDeferred(self._stop())


class Publisher:
    """A notifier bound to one ``publisher_id`` (``nova-compute:<host>``),
    with Nova's notifications of instances and services."""

    log = Logger()

    def __init__(self, notifier: Notifier, publisher_id: str):
        self.notifier = notifier
        self.publisher_id = publisher_id

    @property
    def enabled(self) -> bool:
        return self.notifier.enabled

    def notify(self, context, event_type: str, build: Callable[[], dict],
               priority: str = INFO) -> None:
        """``build()`` makes the payload, only when something is emitted;
        an error building it is logged, never raised."""
        if not self.notifier.enabled:
            return
        try:
            payload = build()
        except Exception:
            self.log.failure("could not build the payload of {event_type}",
                             event_type=event_type)
            return
        self.notifier.notify(context, self.publisher_id, event_type,
                             payload, priority)

    def instance_action(self, context, instance, action: str, phase: str,
                        exc: BaseException | None = None,
                        traceback: str | None = None,
                        name: str = "InstanceActionPayload",
                        **extra: Any) -> None:
        """``instance.<action>.<phase>`` (phase ``start``, ``end`` or
        ``error``; ``error`` has priority ERROR and the fault)."""
        if instance is None:
            return

        def build():
            fault = payloads.exception_payload(exc, traceback)
            if name == "InstanceCreatePayload":
                return payloads.instance_create(context, instance, fault)
            return payloads.instance_action(context, instance, fault,
                                            name=name, **extra)

        event_type = f"instance.{action}" + (f".{phase}" if phase else "")
        self.notify(context, event_type, build,
                    ERROR if phase == "error" else INFO)

    def instance_update(self, context, old, new) -> None:
        """``instance.update``, when the vm_state or task_state changed."""
        if old is None or new is None or (
                old.vm_state == new.vm_state
                and old.task_state == new.task_state):
            return
        self.notify(context, "instance.update",
                    lambda: payloads.instance_update(context, old, new))

    def service_update(self, context, service: dict[str, Any]) -> None:
        self.notify(context, "service.update",
                    lambda: payloads.service_status(service))


#: A publisher that emits nothing: the default of every component.
NOOP = Notifier.noop().prepare("noop")
