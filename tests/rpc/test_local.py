"""The in-process transport: the shared behaviour on the real reactor,
and its timing on a Clock."""

from __future__ import annotations

import json

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted_compute import config, exception
from twisted_compute.context import RequestContext
from twisted_compute.rpc import RPCClient, RPCServer, transport_for
from twisted_compute.rpc.local import LocalBroker, LocalTransport
from twisted_compute.rpc.transport import Target

from tests.rpc.behaviour import BusBehaviour, Manager


class LocalBusBehaviour(BusBehaviour, TestCase):
    timeout = 30

    def setUp(self):
        super().setUp()
        self.broker = LocalBroker()
        self.transport_events = []
        self.patch(LocalTransport, "log",
                   Logger(observer=self.transport_events.append))

    async def make_transport(self):
        transport = LocalTransport(reactor, self.broker, default_timeout=5)
        await transport.start()
        self.addCleanup(transport.stop)
        return transport

    async def send_raw(self, transport, key, body):
        transport.deliver_raw(key, body)

    def transport_rejections(self):
        from twisted.logger import formatEvent
        return len([e for e in self.transport_events
                    if "malformed" in formatEvent(e)])


class LocalTransportClockTests(SynchronousTestCase):
    """Delivery and timeouts run on the injected clock."""

    def setUp(self):
        self.clock = Clock()
        self.transport = LocalTransport(self.clock, default_timeout=60)
        self.ctx = RequestContext(user_id="u", project_id="p")
        self.manager = Manager("s1")
        self.server = RPCServer(self.transport, "conductor", "s1",
                                [self.manager])
        self.server.log = Logger(observer=lambda e: None)
        self.client = RPCClient(self.transport, "conductor")

    def start_server(self):
        self.successResultOf(defer.ensureDeferred(self.server.start()))

    def test_delivery_is_asynchronous(self):
        self.start_server()
        d = self.client.call(self.ctx, "echo", value=1)
        self.assertNoResult(d)
        self.assertEqual(self.manager.calls, [])
        self.clock.advance(0)  # request delivered, reply scheduled
        self.assertEqual(self.manager.calls, [1])
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d)["value"], 1)

    def test_a_reply_is_json_encoded_once(self):
        self.start_server()
        encoded = []
        real_dumps = json.dumps

        def dumps(obj, *args, **kwargs):
            encoded.append(obj)
            return real_dumps(obj, *args, **kwargs)

        self.patch(json, "dumps", dumps)
        d = self.client.call(self.ctx, "echo", value={"big": [1, 2, 3]})
        self.clock.advance(0)
        self.clock.advance(0)
        result = self.successResultOf(d)
        self.assertEqual(result["value"], {"big": [1, 2, 3]})
        replies = [obj for obj in encoded
                   if obj == result or (isinstance(obj, dict)
                                        and obj.get("result") == result)]
        self.assertEqual(len(replies), 1, replies)

    def test_dispatch_hands_the_transport_encoded_bytes(self):
        from twisted_compute.rpc.transport import EncodedReply
        reply = self.successResultOf(self.server.dispatch(
            {"method": "echo", "args": {"value": 2}, "context": {}}))
        self.assertIsInstance(reply, EncodedReply)
        self.assertEqual(json.loads(reply.body)["result"]["value"], 2)

    def test_call_times_out_on_the_clock(self):
        self.start_server()
        d = self.client.prepare(timeout=30).call(self.ctx, "never")
        self.clock.advance(29.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        failure = self.failureResultOf(d, exception.MessagingTimeout)
        self.assertIn("never", failure.getErrorMessage())
        self.assertEqual(self.transport._pending, {})

    def test_default_timeout(self):
        d = self.client.call(self.ctx, "echo", value=1)  # nobody serves
        self.clock.advance(59)
        self.assertNoResult(d)
        self.clock.advance(1)
        self.failureResultOf(d, exception.MessagingTimeout)

    def test_late_reply_after_timeout_is_dropped(self):
        self.start_server()
        d = self.client.prepare(timeout=1).call(
            self.ctx, "async_echo", value=1, delay=0)
        self.clock.advance(1)  # the timeout wins
        self.failureResultOf(d, exception.MessagingTimeout)
        self.clock.advance(1)  # nothing breaks

    def test_messages_wait_for_a_consumer(self):
        self.successResultOf(self.client.cast(self.ctx, "note", value="x"))
        self.clock.advance(1)
        self.assertEqual(self.manager.casts, [])
        self.start_server()
        self.clock.advance(0)
        self.assertEqual(self.manager.casts, [("x", self.ctx.request_id)])

    def test_every_message_is_a_json_copy(self):
        seen = []
        self.transport.consume("t", seen.append)
        original = {"method": "m", "args": {"when": (1, 2)}}
        self.successResultOf(self.transport.cast(Target("t"), original))
        self.clock.advance(0)
        self.assertEqual(seen, [json.loads(json.dumps(original))])
        self.assertEqual(seen[0]["args"]["when"], [1, 2])  # a list now
        self.assertIsNot(seen[0], original)

    def test_stop_fails_pending_calls(self):
        d = self.client.call(self.ctx, "echo", value=1)
        self.successResultOf(self.transport.stop())
        self.failureResultOf(d, exception.ServiceUnavailable)
        timers = [c for c in self.clock.getDelayedCalls()
                  if c.func == self.transport._timed_out]
        self.assertEqual(timers, [])

    def test_cancel_a_call(self):
        d = self.client.call(self.ctx, "echo", value=1)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(self.transport._pending, {})


class TransportForTests(SynchronousTestCase):
    def test_local(self):
        conf = config.load([])
        transport = transport_for(conf, Clock())
        self.assertIsInstance(transport, LocalTransport)
        self.assertEqual(transport.default_timeout, 60)

    def test_rabbit(self):
        from twisted_compute.rpc.amqp import AMQPTransport
        conf = config.load([]).with_overrides(
            DEFAULT={"transport_url":
                     "rabbit://me:secret@h1:5673,me:secret@h2/vh",
                     "rpc_response_timeout": 7})
        transport = transport_for(conf, Clock())
        self.assertIsInstance(transport, AMQPTransport)
        self.assertEqual([(h.host, h.port) for h in transport.url.hosts],
                         [("h1", 5673), ("h2", 5672)])
        self.assertEqual(transport.url.virtual_host, "vh")
        self.assertEqual(transport.default_timeout, 7)
        self.assertEqual(transport.heartbeat, 20)  # 60 s threshold / 3

    def test_bad_scheme(self):
        conf = config.load([]).with_overrides(
            DEFAULT={"transport_url": "kafka://x"})
        self.assertRaises(ValueError, transport_for, conf, Clock())
