"""The in-process bus: the same semantics as AMQP, without a broker.

Used by ``compute-all`` and by fast tests.  Delivery is asynchronous
(``reactor.callLater(0, ...)``), every message and reply makes a JSON round
trip (so nothing that would not cross a real bus slips through), timeouts
run on the injected clock, several consumers of one queue share its
messages round-robin, and every fanout consumer gets a copy.  Messages sent
to a queue nobody consumes yet wait in it, as in a durable AMQP queue.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Callable

import attrs
from twisted.internet import defer
from zope.interface import implementer

from twisted_compute import exception, ids
from twisted_compute.log import Logger
from twisted_compute.rpc.transport import (
    EncodedReply, ITransport, RejectMessage, RequeueMessage, Target)


def _round_trip(message: Any) -> Any:
    """What the other side would see: raises TypeError/ValueError for
    anything that is not plain JSON."""
    return json.loads(json.dumps(message))


@attrs.define(eq=False)
class _Consumer:
    handler: Callable[[dict], Any]
    active: bool = True

    def cancel(self) -> None:
        self.active = False


@attrs.define(eq=False)
class _Queue:
    consumers: list[_Consumer] = attrs.Factory(list)
    waiting: deque = attrs.Factory(deque)
    turn: int = 0

    def live(self) -> list[_Consumer]:
        self.consumers = [c for c in self.consumers if c.active]
        return self.consumers

    def next_consumer(self) -> _Consumer | None:
        consumers = self.live()
        if not consumers:
            return None
        consumer = consumers[self.turn % len(consumers)]
        self.turn += 1
        return consumer


class LocalBroker:
    """The shared state of one in-process bus: queues and fanouts.

    Several :class:`LocalTransport` objects on one broker behave like
    several processes on one RabbitMQ (tests use that)."""

    def __init__(self):
        self.queues: dict[str, _Queue] = {}
        self.fanouts: dict[str, list[_Consumer]] = {}

    def queue(self, name: str) -> _Queue:
        return self.queues.setdefault(name, _Queue())


@implementer(ITransport)
class LocalTransport:
    log = Logger()

    def __init__(self, reactor, broker: LocalBroker | None = None,
                 default_timeout: float = 60.0):
        self.reactor = reactor
        self.broker = broker if broker is not None else LocalBroker()
        self.default_timeout = default_timeout
        self._pending: dict[str, tuple[defer.Deferred, Any]] = {}
        self._consumers: list[_Consumer] = []
        self.running = False

    # --- life cycle -------------------------------------------------------

    def start(self) -> defer.Deferred:
        self.running = True
        return defer.succeed(None)

    def stop(self) -> defer.Deferred:
        self.running = False
        for consumer in self._consumers:
            consumer.cancel()
        self._consumers = []
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            if timer.active():
                timer.cancel()
            d.errback(exception.ServiceUnavailable(
                reason="the message bus was stopped"))
        return defer.succeed(None)

    # --- sending ----------------------------------------------------------

    def call(self, target: Target, message: dict,
             timeout: float | None = None) -> defer.Deferred:
        try:
            body = _round_trip(message)
        except (TypeError, ValueError) as exc:
            return defer.fail(exc)
        timeout = self.default_timeout if timeout is None else timeout
        msg_id = ids.hex_id()

        def cancel(d):
            entry = self._pending.pop(msg_id, None)
            if entry is not None and entry[1].active():
                entry[1].cancel()

        d = defer.Deferred(cancel)
        method = message.get("method", "?") if isinstance(message, dict) \
            else "?"
        timer = self.reactor.callLater(timeout, self._timed_out, msg_id,
                                       method, timeout)
        self._pending[msg_id] = (d, timer)
        self._enqueue(target.routing_key, body, msg_id)
        return d

    def cast(self, target: Target, message: dict,
             timeout: float | None = None) -> defer.Deferred:
        try:
            body = _round_trip(message)
        except (TypeError, ValueError) as exc:
            return defer.fail(exc)
        self._enqueue(target.routing_key, body, None)
        return defer.succeed(None)

    def fanout_cast(self, topic: str, message: dict,
                    timeout: float | None = None) -> defer.Deferred:
        try:
            body = _round_trip(message)
        except (TypeError, ValueError) as exc:
            return defer.fail(exc)
        for consumer in list(self.broker.fanouts.get(topic, ())):
            if consumer.active:
                self.reactor.callLater(0, self._handle, consumer,
                                       _round_trip(body), None)
        return defer.succeed(None)

    def deliver_raw(self, routing_key: str, body: bytes) -> None:
        """Put undecoded bytes on a queue, as a broken peer would (for
        tests of malformed-message handling)."""
        self._enqueue(routing_key, body, None, raw=True)

    def _enqueue(self, key: str, body: Any, msg_id: str | None,
                 raw: bool = False) -> None:
        queue = self.broker.queue(key)
        queue.waiting.append((body, msg_id, self, raw))
        self.reactor.callLater(0, self._drain, key)

    def _drain(self, key: str) -> None:
        queue = self.broker.queue(key)
        while queue.waiting:
            consumer = queue.next_consumer()
            if consumer is None:
                return  # kept until someone consumes this queue
            body, msg_id, sender, raw = queue.waiting.popleft()
            if raw:
                try:
                    body = json.loads(body)
                    if not isinstance(body, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    self.log.error(
                        "rejected a malformed message on {queue}: {error}",
                        queue=key, error=str(exc))
                    continue
            self._handle(consumer, body, (sender, msg_id) if msg_id else
                         None, key)

    def _handle(self, consumer: _Consumer, body: dict, reply_to,
                key: str | None = None) -> None:
        d = defer.maybeDeferred(consumer.handler, body)

        def done(result):
            if reply_to is not None:
                sender, msg_id = reply_to
                sender._reply(msg_id, result)

        def failed(failure):
            if failure.check(RequeueMessage) and key is not None:
                sender, msg_id = reply_to if reply_to else (self, None)

                def again():
                    queue = self.broker.queue(key)
                    queue.waiting.append((body, msg_id, sender, False))
                    self._drain(key)
                self.reactor.callLater(failure.value.delay, again)
                return None
            if failure.check(RejectMessage):
                self.log.error("rejected a message: {reason}",
                               reason=failure.value.reason)
                if failure.value.reply is not None:
                    done(failure.value.reply)
                return None
            self.log.failure("a message handler failed", failure)

        d.addCallbacks(done, failed)

    def _reply(self, msg_id: str, result: Any) -> None:
        try:
            if isinstance(result, EncodedReply):
                result = json.loads(result.body)
            else:
                result = _round_trip(result)
        except (TypeError, ValueError) as exc:
            self.log.error("dropped a reply that is not JSON: {error}",
                           error=str(exc))
            return
        self.reactor.callLater(0, self._deliver_reply, msg_id, result)

    def _deliver_reply(self, msg_id: str, result: Any) -> None:
        entry = self._pending.pop(msg_id, None)
        if entry is None:
            return  # timed out already
        d, timer = entry
        if timer.active():
            timer.cancel()
        d.callback(result)

    def _timed_out(self, msg_id: str, method: str, timeout: float) -> None:
        entry = self._pending.pop(msg_id, None)
        if entry is None:
            return
        entry[0].errback(exception.MessagingTimeout(
            f"Timed out after {timeout} s waiting for a reply to "
            f"{method}", method=method))

    # --- receiving --------------------------------------------------------

    def consume(self, topic: str, handler, server: str | None = None,
                fanout: bool = False) -> defer.Deferred:
        consumer = _Consumer(handler)
        self._consumers.append(consumer)
        if fanout:
            self.broker.fanouts.setdefault(topic, []).append(consumer)
        else:
            key = Target(topic, server).routing_key
            self.broker.queue(key).consumers.append(consumer)
            self.reactor.callLater(0, self._drain, key)
        return defer.succeed(consumer)
