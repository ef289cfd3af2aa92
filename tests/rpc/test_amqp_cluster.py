"""The AMQP transport on a real three-node RabbitMQ cluster
(:mod:`tests.integration.harness.rabbit_cluster`: ``tc1..tc3@localhost``
on 5701-5703, beside the system node), with quorum topic queues.

Each test has a vhost of its own; a test that kills or stops a node
starts it again at cleanup.  Skipped where the cluster cannot run (no
RabbitMQ, not root) unless ``TWISTED_COMPUTE_DEMAND`` names
``rabbitmq-cluster`` or ``all``.
"""

from __future__ import annotations

import os
import time
import uuid

from twisted.internet import defer, reactor, task, threads
from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from tests.integration.harness.rabbit_cluster import require_cluster
from tests.rpc.behaviour import BusHelpers, wait_until
from twisted_compute import config, exception
from twisted_compute.rpc.amqp import AMQPTransport
from twisted_compute.rpc.transport import (
    DEFAULT_AMQP_SPEC, Target, TransportURL, transport_for)


class ClusterCase(BusHelpers, TestCase):
    timeout = 120

    def setUp(self):
        # Blocking (rabbitmqctl), before the test's reactor work.
        self.cluster = require_cluster(self.addCleanup)
        super().setUp()
        self.vhost = f"tc_rpc_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.cluster.add_vhost(self.vhost)
        self.addCleanup(self.cluster.delete_vhost, self.vhost)
        self.exchange = "test_" + uuid.uuid4().hex[:10]
        self.events = []
        self.patch(AMQPTransport, "log", Logger(observer=self.events.append))

    async def make_transport(self, first=None, start=True, **kw):
        kw.setdefault("default_timeout", 10)
        kw.setdefault("retry_interval", 0.1)
        kw.setdefault("retry_max", 1.0)
        kw.setdefault("connect_timeout", 5)
        kw.setdefault("heartbeat_timeout", 6)
        kw.setdefault("quorum", True)
        url = self.cluster.url(self.vhost, first=first)
        transport = AMQPTransport(reactor, TransportURL.parse(url),
                                  DEFAULT_AMQP_SPEC, exchange=self.exchange,
                                  **kw)
        self.addCleanup(transport.stop)
        if start:
            await transport.start()
        return transport

    def node_of(self, transport):
        """The cluster node ``transport`` is connected to."""
        port = transport.endpoint.current.port
        return [n for n in self.cluster.nodes if n.amqp_port == port][0]

    def kill(self, node) -> defer.Deferred:
        """``kill -9`` ``node``; it is started again at cleanup."""
        self.addCleanup(lambda: threads.deferToThread(node.start))
        return threads.deferToThread(node.kill)

    def queues(self) -> defer.Deferred:
        return threads.deferToThread(self.cluster.queues, self.vhost)


class ClusterFixtureTests(ClusterCase):

    def test_three_nodes_in_one_cluster(self):
        status = self.cluster.status()
        self.assertEqual(sorted(status), ["tc1@localhost", "tc2@localhost",
                                          "tc3@localhost"])
        for name, info in status.items():
            self.assertTrue(info["amqp"] and info["in_cluster"], status)
        self.assertEqual(self.cluster.ports, [5701, 5702, 5703])
        # The system node is not one of them.
        self.assertNotIn(5672, self.cluster.ports)
        url = TransportURL.parse(self.cluster.url(self.vhost))
        self.assertEqual([h.port for h in url.hosts], [5701, 5702, 5703])
        self.assertEqual(url.virtual_host, self.vhost)


class QuorumQueueTests(ClusterCase):

    async def test_the_option_declares_quorum_topic_queues(self):
        conf = config.load([]).with_overrides(
            DEFAULT={"transport_url": self.cluster.url(self.vhost),
                     "control_exchange": self.exchange},
            oslo_messaging_rabbit={"rabbit_quorum_queue": True})
        transport = transport_for(conf, reactor)
        self.addCleanup(transport.stop)
        self.assertTrue(transport.quorum)
        await transport.start()
        manager = await self.serve("s1", transport)
        client = await self.client(transport)
        self.assertEqual((await client.call(self.ctx, "echo", value=1))
                         ["value"], 1)
        await client.cast(self.ctx, "note", value=2)
        await wait_until(lambda: manager.casts)
        queues = await self.queues()
        self.assertEqual(queues[self.topic]["type"], "quorum", queues)
        self.assertEqual(queues[f"{self.topic}.s1"]["type"], "quorum")
        # Reply and fanout queues stay classic (and transient).
        self.assertEqual(queues[transport.reply_queue]["type"], "classic")
        self.assertEqual(
            queues[f"{self.topic}_fanout_{transport.process_id}"]["type"],
            "classic")

    async def test_without_the_option_topic_queues_are_classic(self):
        transport = await self.make_transport(quorum=False)
        await self.serve("s1", transport)
        queues = await self.queues()
        self.assertEqual(queues[self.topic]["type"], "classic", queues)

    async def test_delivery_limit_is_declared(self):
        transport = await self.make_transport(quorum_delivery_limit=5)
        self.assertEqual(transport.topic_queue_arguments,
                         {"x-queue-type": "quorum", "x-delivery-limit": 5})
        await self.serve("s1", transport)
        self.assertEqual((await self.queues())[self.topic]["type"], "quorum")


class FailoverTests(ClusterCase):

    async def test_client_moves_to_another_node_and_redeclares(self):
        server_node, client_node = self.cluster.nodes[0], self.cluster.nodes[1]
        server_transport = await self.make_transport(first=server_node)
        await self.serve("s1", server_transport)
        transport = await self.make_transport(first=client_node)
        self.assertEqual(self.node_of(transport), client_node)
        client = await self.client(transport)
        await client.call(self.ctx, "echo", value=0)
        old_reply = transport.reply_queue

        started = time.monotonic()
        await self.kill(client_node)
        result = await client.call(self.ctx, "echo", value=1)
        recovered = time.monotonic() - started
        self.assertEqual(result["value"], 1)
        self.assertNotEqual(self.node_of(transport), client_node)
        self.assertEqual(transport.connections, 2)
        self.assertLess(recovered, 5.0)
        # The reply queue was declared again, on a live node.
        queues = await self.queues()
        self.assertIn(old_reply, queues)
        print(f"\nclient node killed: RPC back in {recovered:.2f} s")

    async def test_server_moves_when_the_queue_leader_dies(self):
        """Kill the node that leads the topic's quorum queue and serves
        the server's connection: calls and casts go on."""
        server_transport = await self.make_transport()
        manager = await self.serve("s1", server_transport)
        queues = await self.queues()
        leader = self.cluster.node(queues[self.topic]["leader"])
        # The client connects to a node that stays up.
        others = [n for n in self.cluster.nodes if n is not leader]
        transport = await self.make_transport(first=others[0])
        client = await self.client(transport)
        await client.call(self.ctx, "echo", value=0)

        started = time.monotonic()
        await self.kill(leader)
        result = await client.call(self.ctx, "echo", value=1)
        recovered = time.monotonic() - started
        self.assertEqual(result["value"], 1)
        self.assertLess(recovered, 5.0)
        await client.cast(self.ctx, "note", value=2)
        await wait_until(lambda: manager.casts, timeout=10)
        new = (await self.queues())[self.topic]["leader"]
        self.assertNotEqual(new, leader.name)
        print(f"\nqueue leader {leader.name} killed: new leader {new}, "
              f"RPC back in {recovered:.2f} s")

    async def test_calls_in_flight_get_a_reply_or_a_clear_timeout(self):
        server_node, client_node = self.cluster.nodes[0], self.cluster.nodes[2]
        await self.serve("s1", await self.make_transport(first=server_node))
        transport = await self.make_transport(first=client_node)
        client = await self.client(transport, timeout=4)
        await client.call(self.ctx, "echo", value=-1)
        calls = [client.call(self.ctx, "async_echo", value=n, delay=0.5)
                 for n in range(30)]
        await task.deferLater(reactor, 0.1, lambda: None)
        started = time.monotonic()
        await self.kill(client_node)
        results = await defer.DeferredList(calls, consumeErrors=True)
        settled = time.monotonic() - started
        answered = [r["value"] for ok, r in results if ok]
        failures = [r for ok, r in results if not ok]
        for failure in failures:
            failure.trap(exception.MessagingTimeout)
            self.assertIn("Timed out after 4", failure.getErrorMessage())
        self.assertEqual(len(answered) + len(failures), 30)
        self.assertLess(settled, 4 + 2)  # each within its timeout
        self.assertEqual(transport._pending, {})
        # And the bus works again.
        self.assertEqual((await client.call(self.ctx, "echo", value=99))
                         ["value"], 99)
        print(f"\n30 calls in flight, client node killed: {len(answered)} "
              f"answered, {len(failures)} timed out (clearly) within "
              f"{settled:.1f} s")

    async def test_confirmed_casts_survive_the_leader(self):
        """Casts confirmed by the cluster are there after a ``kill -9`` of
        the queue's leader, and casts unconfirmed when the sender's node
        died are sent again: every value arrives (perhaps twice)."""
        server_transport = await self.make_transport(start=False)
        # Declare the topic queue first (with no consumer yet).
        await server_transport.start()
        await server_transport._declare_target(
            await server_transport._wait_connected(), Target(self.topic))
        leader = (await self.cluster_leader())
        sender = await self.make_transport(first=leader)
        client = await self.client(sender)
        confirmed = [client.cast(self.ctx, "note", value=n)
                     for n in range(100)]
        await defer.gatherResults(confirmed)
        more = [client.cast(self.ctx, "note", value=n)
                for n in range(100, 200)]
        await self.kill(leader)
        await defer.gatherResults(more)
        self.assertGreaterEqual(sender.connections, 2)
        manager = await self.serve("s1", server_transport)
        await wait_until(lambda: len({v for v, _ in manager.casts}) == 200,
                         timeout=30)
        values = [v for v, _ in manager.casts]
        duplicated = len(values) - len(set(values))
        print(f"\n200 casts, leader killed after 100: 200 of 200 arrived, "
              f"{duplicated} twice (re-sent, unconfirmed)")

    async def cluster_leader(self):
        queues = await self.queues()
        return self.cluster.node(queues[self.topic]["leader"])
