"""The AMQP transport: txamqp on RabbitMQ.

Topology (``exchange`` is ``[DEFAULT] control_exchange``):

* a topic exchange ``exchange``; durable topic queues ``<topic>`` (shared
  by every server of the topic: ``conductor``, ``scheduler``) and
  ``<topic>.<server>`` (``compute.<host>``), bound by the same routing key;
  the sender declares them too, so that a cast survives until its consumer
  starts;
* a fanout exchange ``<exchange>.<topic>_fanout`` per topic, and one queue
  ``<topic>_fanout_<uuid>`` bound to it per consuming process;
* one reply queue ``reply_<uuid>`` per process.  Like oslo.messaging's,
  reply and fanout queues are not exclusive but expire when unused
  (``x-expires``, ``rabbit_transient_queues_ttl``), so that replies sent
  while this process reconnects wait for it instead of being lost.

Calls and casts are persistent (delivery mode 2) and publisher-confirmed
(:mod:`twisted_compute.rpc.amqp_connection`).  A call's request carries an
``expiration`` equal to its timeout, so a request nobody answered in time
is not run later.  Consumers ack after their handler finished, with
``basic.qos`` prefetch so several servers share a topic's work.

The connection is a :class:`ClientService` over the broker hosts in turn,
with jittered exponential backoff; after each (re)connection the topology
is declared again and the consumers restarted.  A publish made while the
connection is down waits for the next one, bounded by its timeout; one
that was not confirmed when the connection dropped is published again.

The spec txamqp needs is loaded by :mod:`twisted_compute.rpc.amqp_spec`;
one connection, its channels and its confirms live in
:mod:`twisted_compute.rpc.amqp_connection`.
"""

from __future__ import annotations

import json
import random as _random
import uuid
from typing import Any, Callable

import attrs
from twisted.application.internet import ClientService
from twisted.internet import defer, task
from twisted.python.failure import Failure
from txamqp.client import Closed
from zope.interface import implementer

from twisted_compute import exception, ids
from twisted_compute.log import Logger
from twisted_compute.rpc.amqp_connection import (
    ConnectionLost, Nacked, _BrokerRotation, _ClientFactory, _Connection, _Shared)
from twisted_compute.rpc.amqp_spec import load_spec, property_names
from twisted_compute.rpc.transport import (
    EncodedReply, ITransport, RejectMessage, RequeueMessage, Target,
    TransportURL)

JSON = "application/json"
PERSISTENT = 2
TRANSIENT = 1


@attrs.define(eq=False)
class _Consumer:
    """A consumer the transport re-creates on every connection."""

    queue: str
    declare: Callable  # (conn) -> Deferred, declares queue and bindings
    handler: Callable
    ready: list = attrs.Factory(list)  # Deferreds waiting for a first run
    active: bool = True
    transport: Any = None

    def cancel(self) -> defer.Deferred:
        self.active = False
        return self.transport._cancel_consumer(self)


@implementer(ITransport)
class AMQPTransport:
    """The :class:`ITransport` on RabbitMQ."""

    log = Logger()

    def __init__(self, reactor, url: TransportURL, spec_path: str,
                 exchange: str = "twisted_compute",
                 default_timeout: float = 60.0,
                 heartbeat_timeout: int = 60, prefetch: int = 10,
                 retry_interval: float = 0.2, retry_backoff: float = 2.0,
                 retry_max: float = 30.0, connect_timeout: float = 10.0,
                 transient_ttl: int = 1800, durable: bool = True,
                 quorum: bool = False, quorum_delivery_limit: int = 0,
                 random: Callable[[], float] = _random.random):
        """``random`` is the source of the reconnection jitter: a callable
        returning a float in [0, 1), like :func:`random.random` or a
        seeded :class:`random.Random`'s ``random`` (tests)."""
        self.reactor = reactor
        self.random = random
        self.url = url
        self.spec = load_spec(spec_path)
        self.props = property_names(self.spec)
        self.exchange = exchange
        self.default_timeout = default_timeout
        # txamqp declares the peer dead after 3 silent intervals.
        self.heartbeat = (max(1, heartbeat_timeout // 3)
                          if heartbeat_timeout else 0)
        self.prefetch = prefetch
        self.retry_interval = retry_interval
        self.retry_backoff = retry_backoff
        self.retry_max = retry_max
        self.connect_timeout = connect_timeout
        self.transient_ttl = transient_ttl
        self.quorum = quorum
        self.quorum_delivery_limit = quorum_delivery_limit
        # A quorum queue is always durable (the broker refuses others).
        self.durable = durable or quorum
        self.process_id = uuid.uuid4().hex[:12]
        self.reply_queue = f"reply_{self.process_id}"
        self.endpoint = _BrokerRotation(reactor, url.hosts, connect_timeout)
        self._service: ClientService | None = None
        self._conn: _Connection | None = None
        self._waiters: list[defer.Deferred] = []
        self._pending: dict[str, defer.Deferred] = {}
        self._consumers: list[_Consumer] = []
        self._stopping = False
        self.connections = 0  # how many times we got connected (tests)
        self.declared_queues: set[str] = set()
        self.declared_exchanges: set[str] = set()

    @classmethod
    def from_config(cls, conf, reactor, url: TransportURL | None = None,
                    **overrides) -> "AMQPTransport":
        rabbit = conf.oslo_messaging_rabbit
        kwargs = dict(
            spec_path=rabbit.amqp_spec_path,
            exchange=conf.control_exchange,
            default_timeout=conf.rpc_response_timeout,
            heartbeat_timeout=rabbit.heartbeat_timeout_threshold,
            prefetch=rabbit.rabbit_qos_prefetch_count,
            retry_interval=rabbit.rabbit_retry_interval,
            retry_backoff=rabbit.rabbit_retry_backoff,
            retry_max=rabbit.rabbit_interval_max,
            connect_timeout=rabbit.rabbit_connect_timeout,
            transient_ttl=rabbit.rabbit_transient_queues_ttl,
            durable=rabbit.amqp_durable_queues,
            quorum=rabbit.rabbit_quorum_queue,
            quorum_delivery_limit=rabbit.rabbit_quorum_delivery_limit)
        kwargs.update(overrides)
        return cls(reactor, url or TransportURL.parse(conf.transport_url),
                   **kwargs)

    # --- connection life cycle -------------------------------------------

    def _retry_delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter on its upper half."""
        base = min(self.retry_max,
                   self.retry_interval * self.retry_backoff ** (attempt - 1))
        return base * (0.5 + self.random() / 2)

    def start(self) -> defer.Deferred:
        """Start connecting; fires once connected, or after
        ``connect_timeout`` (we keep trying in the background: messages
        wait for the connection, bounded by their timeouts)."""
        self._stopping = False
        if self._service is None:
            self._service = ClientService(
                self.endpoint, _ClientFactory(self),
                retryPolicy=self._retry_delay, clock=self.reactor,
                prepareConnection=self._prepare)
            self._service.startService()
        d = self._wait_connected()
        timer = self.reactor.callLater(self.connect_timeout, d.cancel)

        def done(result):
            if timer.active():
                timer.cancel()
            if isinstance(result, Failure):
                self.log.warn("no connection to {broker} yet; retrying in "
                              "the background", broker=self.endpoint)
            return None

        return d.addBoth(done)

    async def _stop(self) -> None:
        self._stopping = True
        for consumer in self._consumers:
            consumer.active = False
            ready, consumer.ready = consumer.ready, []
            for d in ready:
                d.errback(exception.ServiceUnavailable(
                    reason="the message bus was stopped"))
        self._consumers = []
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.errback(exception.ServiceUnavailable(
                reason="the message bus was stopped"))
        pending, self._pending = self._pending, {}
        for d in pending.values():
            if not d.called:
                d.errback(exception.ServiceUnavailable(
                    reason="the message bus was stopped"))
        conn, self._conn = self._conn, None
        if conn is not None and not conn.lost:
            # A clean connection.close, bounded by a second.
            try:
                await conn.client.close(within=1)
            except Exception:
                pass
        if self._service is not None:
            service, self._service = self._service, None
            await service.stopService()

    def stop(self) -> defer.Deferred:
        return defer.ensureDeferred(self._stop())

    def _wait_connected(self) -> defer.Deferred:
        if self._stopping:
            return defer.fail(exception.ServiceUnavailable(
                reason="the message bus was stopped"))
        if self._conn is not None and not self._conn.lost:
            return defer.succeed(self._conn)
        d = defer.Deferred(lambda d: self._waiters.remove(d)
                           if d in self._waiters else None)
        self._waiters.append(d)
        return d

    def drop_connection(self) -> None:
        """Drop the current connection as a network failure would (tests
        and operators' debugging); the transport reconnects."""
        if self._conn is not None:
            self._conn.client.transport.loseConnection()

    async def _prepare(self, protocol) -> None:
        """Run on every new TCP connection: AMQP handshake, channels,
        topology, consumers.  Any failure drops the connection and the
        ClientService retries with backoff."""
        client = protocol.delegate.client  # the AMQClient, not the proxy
        conn = _Connection(client)
        protocol.delegate.conn = conn
        # ClientService has no transition for a disconnection while it
        # prepares a connection (state Connecting) or after the
        # preparation failed (Waiting): it raises NoTransition out of
        # connectionLost.  Its retry follows from the failed preparation
        # alone, so the disconnection is passed on only once prepared.
        prepared = []
        notify = getattr(protocol, "_lostNotification", None)
        if notify is not None:
            protocol._lostNotification = (
                lambda reason: notify(reason) if prepared else None)
        # Small frames (acks, confirms, replies) must not wait for Nagle.
        client.transport.setTcpNoDelay(True)
        try:
            await defer.ensureDeferred(self._setup(conn)).addTimeout(
                self.connect_timeout, self.reactor)
        except BaseException as exc:
            conn.lost = True
            self.log.warn("AMQP setup with {broker} failed: {error!r}",
                          broker=self.endpoint.current.host, error=exc)
            client.transport.abortConnection()
            raise
        prepared.append(True)
        client.disconnected.wait().addCallback(
            lambda _: self._connection_lost(conn))
        if self._stopping:
            client.transport.loseConnection()
            return
        self._conn = conn
        self.connections += 1
        self.log.info("connected to AMQP broker {host}:{port} "
                      "(connection {n})", host=self.endpoint.current.host,
                      port=self.endpoint.current.port, n=self.connections)
        # Collect first: the callbacks below may add consumers (and
        # Deferreds) that are not started yet.
        ready = []
        for consumer in self._consumers:
            ready += [(d, consumer) for d in consumer.ready]
            consumer.ready = []
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(conn)
        for d, consumer in ready:
            d.callback(consumer)

    async def _setup(self, conn: _Connection) -> None:
        broker = self.endpoint.current
        await conn.client.authenticate(broker.user, broker.password)
        conn.publisher = await conn.client.channel(1)
        await conn.publisher.channel_open()
        await conn.publisher.confirm_select()
        conn.consumer = await conn.client.channel(2)
        await conn.consumer.channel_open()
        if self.prefetch:
            await conn.sync("basic_qos", prefetch_count=self.prefetch)
        await self._declare_exchange(conn, self.exchange, "topic",
                                     self.durable)
        await self._declare_queue(conn, self.reply_queue, transient=True)
        conn.reply_tag = f"reply-{self.process_id}"
        await conn.sync("basic_consume", queue=self.reply_queue,
                        consumer_tag=conn.reply_tag, no_ack=True)
        # Every consumer, including those added while we set up.
        while True:
            started = set(map(id, conn.consumers.values()))
            missing = [c for c in self._consumers if id(c) not in started]
            if not missing:
                break
            for consumer in missing:
                await self._start_consumer(conn, consumer)

    def _connection_lost(self, conn: _Connection) -> None:
        conn.lost = True
        conn.fail_unconfirmed()
        if self._conn is conn:
            self._conn = None
            if not self._stopping:
                self.log.warn("lost the AMQP connection; reconnecting")

    # --- topology ----------------------------------------------------------

    def _declare_exchange(self, conn, name, kind, durable) -> defer.Deferred:
        key = "exchange:" + name
        shared = conn.declared.get(key)
        if shared is None or shared.failed:
            self.declared_exchanges.add(name)
            shared = conn.declared[key] = _Shared(
                conn.sync("exchange_declare", exchange=name, type=kind,
                          durable=durable))
        return shared.wait()

    def _declare_queue(self, conn, name, bind_to=None, routing_key=None,
                       transient=False) -> defer.Deferred:
        key = "queue:" + name
        shared = conn.declared.get(key)
        if shared is None or shared.failed:
            self.declared_queues.add(name)

            async def declare():
                if transient:
                    await conn.sync(
                        "queue_declare",
                        queue=name, durable=False, auto_delete=False,
                        exclusive=False,
                        arguments={"x-expires": self.transient_ttl * 1000})
                else:
                    await conn.sync(
                        "queue_declare",
                        queue=name, durable=self.durable, auto_delete=False,
                        exclusive=False, arguments=self.topic_queue_arguments)
                if bind_to is not None:
                    await conn.sync(
                        "queue_bind",
                        queue=name, exchange=bind_to,
                        routing_key=routing_key or "")

            shared = conn.declared[key] = _Shared(
                defer.ensureDeferred(declare()))
        return shared.wait()

    @property
    def topic_queue_arguments(self) -> dict:
        """The ``queue.declare`` arguments of a topic queue."""
        if not self.quorum:
            return {}
        arguments = {"x-queue-type": "quorum"}
        if self.quorum_delivery_limit:
            arguments["x-delivery-limit"] = self.quorum_delivery_limit
        return arguments

    def fanout_exchange(self, topic: str) -> str:
        return f"{self.exchange}.{topic}_fanout"

    async def _declare_target(self, conn, target: Target) -> None:
        await self._declare_exchange(conn, self.exchange, "topic",
                                     self.durable)
        await self._declare_queue(conn, target.routing_key,
                                  bind_to=self.exchange,
                                  routing_key=target.routing_key)

    # --- sending ----------------------------------------------------------

    async def _publish(self, exchange: str, routing_key: str, body: bytes,
                       properties: dict, prepare=None) -> None:
        """Publish until the broker confirms, across reconnections; the
        caller bounds the time by cancelling.  A nacked message (a quorum
        queue electing a leader, or without quorum) is sent again after a
        short, growing pause."""
        nacks = 0
        while True:
            conn = await self._wait_connected()
            try:
                if prepare is not None:
                    await prepare(conn)
                await conn.publish(exchange, routing_key, body, properties)
                return
            except Nacked:
                nacks += 1
                if not conn.lost:
                    # RabbitMQ 3.10: a channel whose publish to a quorum
                    # queue was nacked during a leader election keeps
                    # nacking that queue's messages long after the new
                    # leader is elected, while a new channel is served.
                    # So: a new connection (and channels).
                    self.log.warn("the broker nacked a message to {key}; "
                                  "reconnecting to send it again",
                                  key=routing_key)
                    self._connection_lost(conn)
                    conn.client.transport.loseConnection()
                await task.deferLater(self.reactor,
                                      min(1.0, 0.05 * 2 ** nacks),
                                      lambda: None)
                continue
            except (ConnectionLost, Closed):
                if self._stopping:
                    raise exception.ServiceUnavailable(
                        reason="the message bus was stopped") from None
                if not conn.lost:
                    # The broker closed the connection or a channel while
                    # TCP is still up (RabbitMQ being stopped): this
                    # connection is done.  Give it up, or the next turn
                    # would get it again and fail again at once, without
                    # ever letting the reactor run.
                    self._connection_lost(conn)
                    conn.client.transport.loseConnection()
                # Not confirmed: publish it again on the next connection.
                continue

    def _properties(self, persistent: bool, **extra) -> dict:
        props = {self.props["content-type"]: JSON,
                 self.props["delivery-mode"]:
                     PERSISTENT if persistent else TRANSIENT}
        for name, value in extra.items():
            if value is not None:
                props[self.props[name.replace("_", "-")]] = value
        return props

    def _bounded(self, d: defer.Deferred, timeout: float, what: str,
                 method: str) -> defer.Deferred:
        def timed_out(result, timeout):
            return Failure(exception.MessagingTimeout(
                f"Timed out after {timeout} s {what} {method}"
                + ("" if self._conn else
                   " (no connection to the AMQP broker)"), method=method))

        return d.addTimeout(timeout, self.reactor, onTimeoutCancel=timed_out)

    def _send(self, exchange, routing_key, message, timeout, prepare,
              persistent=True, **props) -> defer.Deferred:
        try:
            body = json.dumps(message).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return defer.fail(exc)
        timeout = self.default_timeout if timeout is None else timeout
        d = defer.ensureDeferred(self._publish(
            exchange, routing_key, body,
            self._properties(persistent, **props), prepare))
        return self._bounded(d, timeout, "sending",
                             _method_of(message))

    def cast(self, target: Target, message: dict,
             timeout: float | None = None) -> defer.Deferred:
        return self._send(self.exchange, target.routing_key, message,
                          timeout,
                          lambda conn: self._declare_target(conn, target),
                          message_id=ids.hex_id())

    def fanout_cast(self, topic: str, message: dict,
                    timeout: float | None = None) -> defer.Deferred:
        exchange = self.fanout_exchange(topic)
        return self._send(
            exchange, "", message, timeout,
            lambda conn: self._declare_exchange(conn, exchange, "fanout",
                                                False),
            persistent=False, message_id=ids.hex_id())

    def call(self, target: Target, message: dict,
             timeout: float | None = None) -> defer.Deferred:
        timeout = self.default_timeout if timeout is None else timeout
        method = _method_of(message)
        msg_id = ids.hex_id()
        sending = self._send(
            self.exchange, target.routing_key, message, timeout,
            lambda conn: self._declare_target(conn, target),
            correlation_id=msg_id, reply_to=self.reply_queue,
            message_id=msg_id,
            expiration=str(max(1, int(timeout * 1000))))

        def cancel(d):
            self._pending.pop(msg_id, None)
            if not sending.called:
                sending.cancel()

        reply = defer.Deferred(cancel)
        self._pending[msg_id] = reply

        def not_sent(failure):
            if self._pending.pop(msg_id, None) is not None:
                reply.errback(failure)

        sending.addErrback(not_sent)
        return self._bounded(reply, timeout, "waiting for a reply to",
                             method)

    # --- receiving --------------------------------------------------------

    def consume(self, topic: str, handler, server: str | None = None,
                fanout: bool = False) -> defer.Deferred:
        if fanout:
            queue = f"{topic}_fanout_{self.process_id}"
            exchange = self.fanout_exchange(topic)

            async def declare(conn):
                await self._declare_exchange(conn, exchange, "fanout", False)
                await self._declare_queue(conn, queue, bind_to=exchange,
                                          transient=True)
        else:
            target = Target(topic, server)
            queue = target.routing_key

            async def declare(conn):
                await self._declare_target(conn, target)

        consumer = _Consumer(queue, declare, handler, transport=self)
        self._consumers.append(consumer)
        d: defer.Deferred = defer.Deferred()
        consumer.ready.append(d)
        if self._conn is not None and not self._conn.lost:
            def started(_):
                if d in consumer.ready:
                    consumer.ready.remove(d)
                    d.callback(consumer)

            def lost(failure):
                # The connection went away meanwhile: the consumer starts
                # with the next one, and ``d`` fires then.
                failure.trap(Closed, ConnectionLost)

            defer.ensureDeferred(
                self._start_consumer(self._conn, consumer)).addCallbacks(
                started, lost)
        return d

    async def _start_consumer(self, conn: _Connection,
                              consumer: _Consumer) -> None:
        await consumer.declare(conn)
        # Our own tag, registered first: a delivery may follow consume-ok
        # at once.
        tag = f"{consumer.queue}-{uuid.uuid4().hex[:8]}"
        conn.consumers[tag] = consumer
        await conn.sync("basic_consume", queue=consumer.queue,
                        consumer_tag=tag)

    def _cancel_consumer(self, consumer: _Consumer) -> defer.Deferred:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        conn = self._conn
        if conn is None or conn.lost:
            return defer.succeed(None)
        for tag, c in list(conn.consumers.items()):
            if c is consumer:
                del conn.consumers[tag]
                d = conn.sync("basic_cancel", consumer_tag=tag)
                return d.addErrback(lambda f: None).addCallback(
                    lambda _: None)
        return defer.succeed(None)

    def _on_deliver(self, conn: _Connection, channel, msg) -> None:
        """Called by txamqp for every delivery; never raises (an exception
        here would make txamqp close the connection)."""
        try:
            if conn.lost:
                return  # a late delivery on a dead connection: redelivered
            content = msg.content
            body = content.body
            props = content.properties
            if msg.consumer_tag == conn.reply_tag:
                self._on_reply(body, props)
                return
            consumer = conn.consumers.get(msg.consumer_tag)
            if consumer is None or not consumer.active:
                # Cancelled meanwhile: give it back to the other servers.
                channel.basic_reject(delivery_tag=msg.delivery_tag,
                                     requeue=True).addErrback(_ignore)
                return
            self._handle(conn, channel, consumer, msg.delivery_tag, body,
                         props)
        except Exception:
            self.log.failure("error handling an AMQP delivery")

    def _on_reply(self, body, props) -> None:
        msg_id = props.get(self.props["correlation-id"])
        d = self._pending.pop(msg_id, None) if msg_id else None
        if d is None:
            self.log.debug("dropped a reply nobody waits for ({msg_id})",
                           msg_id=msg_id)
            return
        try:
            d.callback(_decode(body))
        except ValueError as exc:
            d.errback(exception.ServiceUnavailable(
                reason=f"malformed reply: {exc}"))

    def _handle(self, conn, channel, consumer, delivery_tag, body,
                props) -> None:
        def settle(ack: bool, requeue: bool = False) -> None:
            if conn.lost:
                return  # the broker redelivers it to someone
            if ack:
                d = channel.basic_ack(delivery_tag=delivery_tag)
            else:
                d = channel.basic_reject(delivery_tag=delivery_tag,
                                         requeue=requeue)
            d.addErrback(_ignore)

        try:
            message = _decode(body)
        except ValueError as exc:
            self.log.error("rejected a malformed message on {queue}: "
                           "{error}", queue=consumer.queue, error=str(exc))
            settle(False)
            return
        reply_to = props.get(self.props["reply-to"])
        msg_id = props.get(self.props["correlation-id"])

        def reply(result) -> None:
            if not reply_to or not msg_id:
                return
            try:
                payload = (result.body if isinstance(result, EncodedReply)
                           else json.dumps(result).encode("utf-8"))
            except (TypeError, ValueError) as exc:
                self.log.error("could not send a reply that is not JSON: "
                               "{error}", error=str(exc))
                return
            # Replies go out on the current connection, whichever it is.
            d = self._send_reply(reply_to, payload, msg_id)
            d.addErrback(lambda f: self.log.warn(
                "lost a reply to {queue}: {error}", queue=reply_to,
                error=f.getErrorMessage()))

        def done(result):
            reply(result)
            settle(True)

        def failed(failure):
            if failure.check(RequeueMessage):
                self.reactor.callLater(failure.value.delay, settle, False,
                                       True)
                return None
            if failure.check(RejectMessage):
                self.log.error("rejected a message on {queue}: {reason}",
                               queue=consumer.queue,
                               reason=failure.value.reason)
                if failure.value.reply is not None:
                    reply(failure.value.reply)
                settle(False)
                return None
            self.log.failure("the handler of {queue} failed", failure,
                             queue=consumer.queue)
            settle(False)

        defer.maybeDeferred(consumer.handler, message).addCallbacks(
            done, failed).addErrback(
            lambda f: self.log.failure("settling a message", f))

    def _send_reply(self, reply_to: str, payload: bytes,
                    msg_id: str) -> defer.Deferred:
        d = defer.ensureDeferred(self._publish(
            "", reply_to, payload,
            self._properties(False, correlation_id=msg_id)))
        return d.addTimeout(self.default_timeout, self.reactor)


def _ignore(failure):
    return None


def _method_of(message: Any) -> str:
    if isinstance(message, dict):
        return str(message.get("method", "?"))
    return "?"


def _decode(body) -> dict:
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8") from None
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message
