"""The AMQP transport against the real RabbitMQ on 127.0.0.1:5672.

Skipped when RabbitMQ is unreachable, unless TWISTED_COMPUTE_DEMAND names
rabbitmq (or all).  Every test uses its own control exchange and topic
names, and deletes what it declared.
"""

from __future__ import annotations

import json
import random
import uuid

from twisted.internet import defer, reactor, task
from twisted.internet.task import Clock
from twisted.logger import Logger, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.base import require_service
from tests.rpc.amqp_cleanup import delete_declared
from tests.rpc.behaviour import BusBehaviour, BusHelpers, wait_until
from twisted_compute import exception
from twisted_compute.rpc.amqp import AMQPTransport
from twisted_compute.rpc.amqp_connection import _Connection
from twisted_compute.rpc.amqp_spec import (
    SpecError, load_spec, property_names)
from twisted_compute.rpc.transport import (
    DEFAULT_AMQP_SPEC, Target, TransportURL)

BROKER = "rabbit://guest:guest@127.0.0.1:5672/"


class AMQPCase(TestCase):
    timeout = 30

    def setUp(self):
        require_service("rabbitmq", port=5672)
        super().setUp()
        self.exchange = "test_" + uuid.uuid4().hex[:10]
        self.transport_events = []
        self.patch(AMQPTransport, "log",
                   Logger(observer=self.transport_events.append))

    async def make_transport(self, url=BROKER, start=True, **kw):
        kw.setdefault("default_timeout", 10)
        kw.setdefault("retry_interval", 0.1)
        kw.setdefault("connect_timeout", 5)
        transport = AMQPTransport(reactor, TransportURL.parse(url),
                                  DEFAULT_AMQP_SPEC, exchange=self.exchange,
                                  **kw)

        async def clean():
            await transport.stop()
            await delete_declared(transport)

        self.addCleanup(lambda: defer.ensureDeferred(clean()))
        if start:
            await transport.start()
        return transport

    async def send_raw(self, transport, key, body):
        """Publish bytes that are no JSON envelope, confirmed."""
        await transport._publish(
            transport.exchange, key, body,
            transport._properties(True),
            lambda conn: transport._declare_target(conn, Target(key)))

    def transport_rejections(self):
        return len([e for e in self.transport_events
                    if "malformed" in formatEvent(e)])


class AMQPBusBehaviour(BusBehaviour, AMQPCase):
    short_timeout = 0.5


class AMQPTransportTests(BusHelpers, AMQPCase):
    """What only the AMQP transport has: the wire, confirms, reconnects."""

    async def test_call_properties_on_the_wire(self):
        """The request carries correlation id, reply-to, persistence and
        an expiration equal to the timeout: read it back with basic.get."""
        transport = await self.make_transport()
        call = transport.call(Target(self.topic), {"method": "m"}, 5)
        call.addErrback(lambda f: f.trap(exception.MessagingTimeout,
                                         defer.CancelledError))
        conn = transport._conn
        await wait_until(lambda: ("queue:" + self.topic) in conn.declared)
        await task.deferLater(reactor, 0.2, lambda: None)
        got = await conn.consumer.basic_get(queue=self.topic, no_ack=True)
        self.assertEqual(got.method.name, "get-ok")
        props = got.content.properties
        self.assertEqual(props["correlation-id"],
                         list(transport._pending)[0])
        self.assertEqual(props["reply-to"], transport.reply_queue)
        self.assertEqual(props["delivery-mode"], 2)
        self.assertEqual(props["content-type"], "application/json")
        self.assertEqual(props["expiration"], "5000")
        self.assertEqual(json.loads(got.content.body), {"method": "m"})
        call.cancel()

    async def test_cast_waits_for_the_publisher_confirm(self):
        transport = await self.make_transport()
        conn = transport._conn
        before = conn.published
        d = transport.cast(Target(self.topic), {"method": "m"})
        self.assertNoResult(d)  # not before the broker's basic.ack
        await d
        self.assertEqual(conn.published, before + 1)
        self.assertEqual(conn.unconfirmed, {})

    async def test_rejected_messages_are_not_requeued(self):
        await self.serve("s1")
        transport = await self.make_transport()
        await self.send_raw(transport, self.topic, b"garbage")
        await wait_until(lambda: self.transport_rejections() == 1)
        await task.deferLater(reactor, 0.2, lambda: None)
        ok = await transport._conn.consumer.queue_declare(
            queue=self.topic, passive=True)
        self.assertEqual(ok.message_count, 0)
        self.assertEqual(self.transport_rejections(), 1)  # not redelivered

    async def test_calls_survive_a_dropped_client_connection(self):
        await self.serve("s1")
        transport = await self.make_transport()
        client = await self.client(transport)
        pending = [client.call(self.ctx, "async_echo", value=n, delay=0.3)
                   for n in range(5)]
        await task.deferLater(reactor, 0.05, lambda: None)
        transport.drop_connection()
        more = [client.call(self.ctx, "echo", value=n) for n in range(5, 10)]
        results = await defer.gatherResults(pending + more)
        self.assertEqual([r["value"] for r in results], list(range(10)))
        self.assertEqual(transport.connections, 2)

    async def test_server_resumes_after_a_dropped_connection(self):
        server_transport = await self.make_transport()
        manager = await self.serve("s1", server_transport)
        client = await self.client()
        await client.call(self.ctx, "echo", value=0)
        server_transport.drop_connection()
        results = await defer.gatherResults(
            [client.call(self.ctx, "echo", value=n) for n in range(1, 6)])
        self.assertEqual([r["value"] for r in results], [1, 2, 3, 4, 5])
        self.assertEqual(server_transport.connections, 2)
        await client.prepare(fanout=True).cast(self.ctx, "note", value="f")
        await wait_until(lambda: manager.casts)

    async def test_casts_made_while_disconnected_go_out_later(self):
        manager = await self.serve("s1")
        transport = await self.make_transport()
        client = await self.client(transport)
        transport.drop_connection()
        await wait_until(lambda: transport._conn is None, timeout=2)
        sent = [client.cast(self.ctx, "note", value=n) for n in range(5)]
        await defer.gatherResults(sent)
        await wait_until(lambda: len(manager.casts) == 5)
        self.assertEqual(sorted(v for v, _ in manager.casts), list(range(5)))

    async def test_consumers_start_when_the_connection_comes(self):
        transport = await self.make_transport(start=False)
        manager_started = defer.ensureDeferred(self.serve("s1", transport))
        self.assertNoResult(manager_started)
        await transport.start()
        await manager_started
        client = await self.client()
        self.assertEqual(
            (await client.call(self.ctx, "echo", value=1))["server"], "s1")

    async def test_no_broker_means_a_bounded_clear_error(self):
        transport = await self.make_transport(
            url="rabbit://guest:guest@127.0.0.1:1/", start=False,
            connect_timeout=0.5)
        await transport.start()  # does not hang: we retry in the background
        with self.assertRaises(exception.MessagingTimeout) as caught:
            await transport.call(Target(self.topic), {"method": "m"}, 0.5)
        self.assertIn("no connection", str(caught.exception))
        with self.assertRaises(exception.MessagingTimeout):
            await transport.cast(Target(self.topic), {"method": "m"}, 0.5)
        self.assertEqual(transport._waiters, [])

    async def test_stop_fails_pending_calls(self):
        transport = await self.make_transport()
        d = transport.call(Target(self.topic), {"method": "m"}, 20)
        await task.deferLater(reactor, 0.1, lambda: None)
        await transport.stop()
        with self.assertRaises(exception.ServiceUnavailable):
            await d

    async def test_second_broker_host_is_used(self):
        """With a dead first host in the list, the next one serves."""
        transport = await self.make_transport(
            url="rabbit://guest:guest@127.0.0.1:1,guest:guest@127.0.0.1:5672/",
            start=False)
        await transport.start()
        self.assertEqual(transport.endpoint.current.port, 5672)
        await self.serve("s1")
        result = await (await self.client(transport)).call(
            self.ctx, "echo", value=1)
        self.assertEqual(result["value"], 1)

    async def test_concurrent_declares_and_consumes_stay_in_step(self):
        """Consumers started while other coroutines declare topics (a
        handler casting to a new topic while the process starts): the
        consumer channel's synchronous methods are never pipelined, since
        RabbitMQ may answer a basic.consume after a request sent later."""
        transport = await self.make_transport()

        async def handler(*args, **kwargs):
            return None
        work = []
        for index in range(15):
            topic = f"{self.topic}-{index}"
            work.append(transport.consume(topic, handler))
            work.append(transport.consume(topic, handler, fanout=True))
            work.append(defer.ensureDeferred(self.send_raw(
                transport, f"{self.topic}-other-{index}", b"{}")))
        # Out of step, txamqp hands answers to the wrong callers (or
        # none): bounded, so that shows as a failure, not a hang.
        results = await defer.DeferredList(
            work, consumeErrors=True).addTimeout(10, reactor)
        failures = [r for ok, r in results if not ok]
        self.assertEqual(failures, [])
        # The channel is still in step: one more round trip works.
        await transport.consume(f"{self.topic}-last", handler)


class AMQPUnitTests(SynchronousTestCase):
    """Pieces of the AMQP transport that need no broker."""

    def test_confirms_with_multiple(self):
        conn = _Connection(client=None)
        ds = {}
        for tag in (1, 2, 3, 4):
            ds[tag] = defer.Deferred()
            conn.unconfirmed[tag] = ds[tag]
        conn.confirm(2, True, True)  # acks 1 and 2
        self.successResultOf(ds[1])
        self.successResultOf(ds[2])
        self.assertNoResult(ds[3])
        conn.confirm(4, False, False)  # nack of 4 alone
        self.failureResultOf(ds[4], exception.ServiceUnavailable)
        self.assertNoResult(ds[3])
        conn.fail_unconfirmed()
        from twisted_compute.rpc.amqp_connection import ConnectionLost
        self.failureResultOf(ds[3], ConnectionLost)

    def test_publish_on_a_closed_channel_waits_for_a_new_connection(self):
        # RabbitMQ stopping closes the channels before the TCP connection
        # goes: a publish then fails at once on a connection that is not
        # "lost" yet.  It must give that connection up and wait for the
        # next, not retry it in a loop that never lets the reactor run.
        from unittest import mock
        from txamqp.client import Closed
        transport = AMQPTransport(
            Clock(), TransportURL.parse(BROKER), DEFAULT_AMQP_SPEC)
        closing = mock.Mock(lost=False)

        def publish(*args):
            if closing.publish.call_count > 3:  # the old endless loop
                raise RuntimeError("published again on a closed channel")
            return defer.fail(Closed())
        closing.publish.side_effect = publish
        transport._conn = closing
        d = defer.ensureDeferred(transport._publish("x", "key", b"{}", {}))
        self.assertNoResult(d)
        self.assertEqual(closing.publish.call_count, 1)
        self.assertTrue(closing.lost)
        closing.client.transport.loseConnection.assert_called_once_with()
        self.assertIsNone(transport._conn)
        fresh = mock.Mock(lost=False)
        fresh.publish.return_value = defer.succeed(None)
        waiters, transport._waiters = transport._waiters, []
        for waiter in waiters:
            waiter.callback(fresh)
        self.assertIsNone(self.successResultOf(d))
        fresh.publish.assert_called_once_with("x", "key", b"{}", {})

    def test_tables_decode_every_rabbitmq_field_type(self):
        """A quorum queue's redelivery carries ``x-delivery-count`` as an
        int64 (``l``); dead-lettering adds arrays and timestamps.  txamqp
        alone raises on those and drops the connection."""
        import io
        import struct

        from txamqp.codec import Codec

        def entry(key, kind, payload):
            k = key.encode()
            return bytes([len(k)]) + k + kind + payload
        body = b"".join([
            entry("x-delivery-count", b"l", struct.pack("!q", 3)),
            entry("neg", b"s", struct.pack("!h", -2)),
            entry("ok", b"t", b"\x01"),
            entry("when", b"T", struct.pack("!Q", 1700000000)),
            entry("ratio", b"d", struct.pack("!d", 0.5)),
            entry("none", b"V", b""),
            entry("s", b"S", struct.pack("!L", 2) + b"hi"),
            entry("arr", b"A", struct.pack("!L", 10) + b"I"
                  + struct.pack("!i", 7) + b"S" + struct.pack("!L", 0)),
        ])
        codec = Codec(io.BytesIO(struct.pack("!L", len(body)) + body))
        self.assertEqual(codec.decode_table(), {
            "x-delivery-count": 3, "neg": -2, "ok": True,
            "when": 1700000000, "ratio": 0.5, "none": None, "s": "hi",
            "arr": [7, ""]})

    def test_property_names_follow_the_spec_flavour(self):
        names = property_names(load_spec(DEFAULT_AMQP_SPEC))
        self.assertEqual(names["correlation-id"], "correlation-id")
        from txamqp import spec
        old = spec.load("/usr/share/amqp/specs/0-8/amqp0-8.stripped.xml")
        self.assertEqual(property_names(old)["reply-to"], "reply to")

    def test_missing_spec_is_explained(self):
        with self.assertRaises(SpecError) as caught:
            load_spec("/nonexistent/amqp.xml")
        self.assertIn("amqp-specs", str(caught.exception))

    def test_backoff_grows_with_jitter_and_a_cap(self):
        transport = AMQPTransport(
            Clock(), TransportURL.parse(BROKER), DEFAULT_AMQP_SPEC,
            retry_interval=1.0, retry_backoff=2.0, retry_max=8.0)
        for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 8.0)):
            delays = {transport._retry_delay(attempt) for _ in range(20)}
            self.assertTrue(all(base / 2 <= d <= base for d in delays))
            self.assertGreater(len(delays), 1)  # jittered

    def test_backoff_jitter_comes_from_the_given_source(self):
        draws = iter([0.0, 0.5, 0.999])
        transport = AMQPTransport(
            Clock(), TransportURL.parse(BROKER), DEFAULT_AMQP_SPEC,
            retry_interval=1.0, retry_backoff=2.0, retry_max=8.0,
            random=lambda: next(draws))
        self.assertEqual(transport._retry_delay(2), 1.0)
        self.assertEqual(transport._retry_delay(2), 1.5)
        self.assertAlmostEqual(transport._retry_delay(2), 1.999)
        seeded = [AMQPTransport(
            Clock(), TransportURL.parse(BROKER), DEFAULT_AMQP_SPEC,
            random=random.Random(7).random) for _ in range(2)]
        self.assertEqual([seeded[0]._retry_delay(n) for n in range(1, 6)],
                         [seeded[1]._retry_delay(n) for n in range(1, 6)])
