"""``get_instance_diagnostics`` (compute RPC 1.3): the agent on the fake
driver, the client's version handling, and the call over the local bus."""

from __future__ import annotations

import datetime

from twisted.internet import defer

from tests.compute.test_manager import (
    HOST, ManagerTestCase, RPCClientTests, make_instance)
from twisted_compute import exception
from twisted_compute.compute.rpcapi import ComputeAPIClient
from twisted_compute.objects.diagnostics import Diagnostics
from twisted_compute.objects.instance import Instance
from twisted_compute.rpc import RPCServer
from twisted_compute.rpc.local import LocalTransport
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase


class AgentTests(ManagerTestCase):
    def diagnostics(self, instance):
        return defer.ensureDeferred(self.manager.get_instance_diagnostics(
            self.ctx, instance=dict(self.db(instance))))

    def test_running_guest(self):
        instance = self.active(vcpus=2)
        launched = self.manager.now() - datetime.timedelta(seconds=90)
        self.db(instance)["launched_at"] = {
            "__datetime__": launched.isoformat()}
        self.db(instance)["config_drive"] = "True"
        result = Diagnostics.from_dict(self.successResultOf(
            self.diagnostics(instance)))
        self.assertEqual((result.state, result.driver, result.uptime,
                          result.config_drive),
                         ("running", "fake", 90, True))
        self.assertEqual([c.id for c in result.cpu_details], [0, 1])
        self.assertEqual([d.name for d in result.disk_details], ["vda"])
        self.assertEqual(result.memory_maximum, 512)

    def test_not_running_is_invalid_state(self):
        instance = self.active()
        self.driver.guests[instance.uuid].state = 4
        failure = self.failureResultOf(self.diagnostics(instance),
                                       exception.InstanceInvalidState)
        self.assertIn("power_state shutdown", failure.value.format_message())
        self.assertEqual(failure.value.code, 409)

    def test_driver_without_diagnostics(self):
        instance = self.active()
        self.driver.get_instance_diagnostics = None
        self.failureResultOf(self.diagnostics(instance),
                             exception.NotImplementedYet)


class ClientTests(SynchronousTestCase):
    setUp = RPCClientTests.setUp
    def test_diagnostics_is_a_1_3_call(self):
        record = Diagnostics(state="running", driver="fake")
        self.rpc_client.prepare = lambda **kw: _Answer(self.sent, kw,
                                                       record.to_dict())
        instance = make_instance(host="hv7")
        self.assertEqual(self.successResultOf(
            self.client.get_instance_diagnostics(self.ctx, instance)),
            record)
        kind, prepared, method, _ = self.sent[-1]
        self.assertEqual((kind, prepared["server"], prepared["version"],
                          method),
                         ("call", "hv7", "1.3", "get_instance_diagnostics"))

    def test_diagnostics_under_an_older_cap(self):
        self.rpc_client.version_cap = "1.1"
        self.failureResultOf(self.client.get_instance_diagnostics(
            self.ctx, make_instance(host="hv7")),
            exception.ComputeAgentTooOld)


class _Answer:
    def __init__(self, sent, kw, answer):
        self.sent, self.kw, self.answer = sent, kw, answer

    def call(self, context, method, **kwargs):
        self.sent.append(("call", self.kw, method, kwargs))
        return defer.succeed(self.answer)


class OverTheBusTests(ManagerTestCase):
    def test_call_and_typed_error(self):
        transport = LocalTransport(self.clock, default_timeout=60)
        server = RPCServer(transport, "compute", HOST, [self.manager])
        server.log = Logger(observer=lambda event: None)
        self.successResultOf(defer.ensureDeferred(server.start()))
        client = ComputeAPIClient.for_transport(transport)
        instance = self.active()
        current = Instance.from_dict(self.db(instance))
        d = client.get_instance_diagnostics(self.ctx, current)
        for _ in range(3):
            self.clock.advance(0)
        result = self.successResultOf(d)
        self.assertEqual(result.nic_details[0].mac_address[:9], "fa:16:3e:")
        self.driver.guests[instance.uuid].state = 3
        d = client.get_instance_diagnostics(self.ctx, current)
        for _ in range(3):
            self.clock.advance(0)
        self.failureResultOf(d, exception.InstanceInvalidState)


class ExternalEventCastTests(SynchronousTestCase):
    setUp = RPCClientTests.setUp

    def test_external_events_are_a_1_3_cast(self):
        events = [{"server_uuid": "u1", "name": "network-vif-plugged",
                   "status": "completed", "tag": None}]
        self.successResultOf(self.client.external_instance_event(
            self.ctx, "hv3", events))
        kind, prepared, method, args = self.sent[-1]
        self.assertEqual((kind, prepared["server"], prepared["version"],
                          method, args),
                         ("cast", "hv3", "1.3", "external_instance_event",
                          {"events": events}))
        self.rpc_client.version_cap = "1.1"
        self.failureResultOf(self.client.external_instance_event(
            self.ctx, "hv3", events), exception.ComputeAgentTooOld)
