"""The scheduler's RPC client, alone and over the in-process bus."""

from __future__ import annotations

from twisted.internet import defer

from tests.scheduler.base import SchedulerTestCase, flavor, request_spec
from twisted_compute import exception
from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection
from twisted_compute.rpc import RPCClient, RPCServer
from twisted_compute.rpc.local import LocalBroker, LocalTransport
from twisted_compute.scheduler import rpcapi


class RecordingClient:
    """Stands for an RPCClient: records prepare() and call()/cast()."""

    def __init__(self, log=None, **prepared):
        self.log = [] if log is None else log
        self.prepared = prepared

    def prepare(self, **kwargs):
        return RecordingClient(self.log, **kwargs)

    def call(self, context, method, **kwargs):
        self.log.append(("call", self.prepared, method, kwargs))
        return defer.succeed([[{"host": "h", "nodename": "n"},
                               {"host": "h2", "nodename": "n2"}]])

    def cast(self, context, method, **kwargs):
        self.log.append(("cast", self.prepared, method, kwargs))
        return defer.succeed(None)


class ClientTests(SchedulerTestCase):
    def test_select_destinations_is_a_long_call(self):
        fake = RecordingClient()
        conf = self.conf.with_overrides(DEFAULT={"long_rpc_timeout": 77})
        client = rpcapi.SchedulerAPIClient(fake, conf)
        spec = RequestSpec(flavor={"vcpus": 1})
        result = self.successResultOf(client.select_destinations(
            self.context, spec, ("u1", "u2"), False))
        self.assertEqual(result, [Selection(
            "h", "n", alternates=(Selection("h2", "n2"),))])
        self.assertEqual(fake.log, [(
            "call", {"version": "1.0", "timeout": 77.0},
            "select_destinations",
            {"request_spec": spec.to_dict(), "instance_uuids": ["u1", "u2"],
             "return_alternates": False})])

    def test_timeout_without_conf(self):
        client = rpcapi.SchedulerAPIClient(RecordingClient())
        self.assertEqual(client.long_rpc_timeout,
                         self.conf.long_rpc_timeout)

    def test_refresh_is_a_fanout_cast(self):
        fake = RecordingClient()
        client = rpcapi.SchedulerAPIClient(fake, self.conf)
        self.successResultOf(client.refresh_host_states(self.context))
        self.assertEqual(fake.log, [("cast", {"version": "1.0",
                                              "fanout": True},
                                     "refresh_host_states", {})])


class OverTheBusTests(SchedulerTestCase):
    def setUp(self):
        super().setUp()
        broker = LocalBroker()
        # The bus runs on the DB fixture's clock-reactor.
        self.bus_clock = self.reactor
        self.transport = LocalTransport(self.bus_clock, broker)
        self.successResultOf(self.transport.start())
        self.server = RPCServer(self.transport, rpcapi.TOPIC, "sched1",
                                [self.manager])
        self.successResultOf(defer.ensureDeferred(self.server.start()))
        self.client = rpcapi.SchedulerAPIClient(
            RPCClient(self.transport, rpcapi.TOPIC), self.conf)

    def settle(self, d):
        for _ in range(10):
            self.bus_clock.advance(0)
        return d

    def test_round_trip(self):
        self.add_host("a", memory_mb=8192)
        self.add_host("b")
        d = self.settle(self.client.select_destinations(
            self.context, RequestSpec.from_dict(request_spec()),
            ["i1", "i2"]))
        selections = self.successResultOf(d)
        self.assertEqual([(s.host, s.alternates) for s in selections],
                         [("a", ()), ("b", ())])

    def test_no_valid_host_comes_back_typed(self):
        self.add_host("a", memory_mb=256)
        d = self.settle(self.client.select_destinations(
            self.context, RequestSpec.from_dict(
                request_spec(flavor=flavor(memory_mb=512))), ["i1"]))
        error = self.failureResultOf(d, exception.NoValidHost).value
        self.assertIn("RamFilter", str(error))

    def test_refresh_over_fanout(self):
        self.add_host("a")
        self.successResultOf(self.settle(self.client.select_destinations(
            self.context, RequestSpec.from_dict(request_spec()), ["i1"])))
        self.assertEqual(self.manager.host_manager.refreshes, 1)
        self.settle(self.client.refresh_host_states(self.context))
        self.assertFalse(self.manager.host_manager.is_fresh())
