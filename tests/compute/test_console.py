"""The agent's ``get_console`` on the fake driver."""

from __future__ import annotations

import types

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.base import make_conf
from twisted_compute import exception
from twisted_compute.compute.manager import ComputeManager
from twisted_compute.objects.console import ConsoleInfo
from twisted_compute.virt import power_state
from twisted_compute.virt.fake import FakeDriver, FakeGuest


class GetConsoleTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        conf = make_conf(self.mktemp())
        self.driver = FakeDriver(conf, self.reactor, host="h1")
        self.manager = ComputeManager(conf, "h1", self.driver, None,
                                      self.reactor)
        self.driver.guests["u1"] = FakeGuest(
            uuid="u1", name="instance-1", internal_id="x",
            state=power_state.RUNNING, vcpus=1, memory_mb=1, disk_gb=1)

    def instance(self, uuid="u1"):
        return types.SimpleNamespace(uuid=uuid)

    def test_fake_consoles_listen_on_loopback_once(self):
        first = self.successResultOf(self.driver.get_console(
            None, self.instance(), "serial"))
        again = self.successResultOf(self.driver.get_console(
            None, self.instance(), "serial"))
        self.successResultOf(self.driver.get_console(
            None, self.instance(), "novnc"))
        self.assertEqual(first, again)
        self.assertEqual(first.host, "127.0.0.1")
        self.assertEqual(len(self.reactor.tcpServers), 2)
        self.assertEqual({s[3] for s in self.reactor.tcpServers},
                         {"127.0.0.1"})
        self.successResultOf(self.driver.destroy(None, self.instance(), []))
        self.assertEqual(self.driver.guests, {})

    def test_unsupported_stopped_and_unknown_guests(self):
        self.failureResultOf(self.driver.get_console(
            None, self.instance(), "spice-html5"),
            exception.ConsoleNotSupported)
        self.failureResultOf(self.driver.get_console(
            None, self.instance("nope"), "serial"),
            exception.InstanceNotFound)
        self.driver.guests["u1"].state = power_state.SHUTDOWN
        self.failureResultOf(self.driver.get_console(
            None, self.instance(), "serial"), exception.InstanceNotReady)

    def test_manager_answers_a_console_info_dict(self):
        from twisted.internet import defer
        from twisted_compute.objects.instance import Instance
        import attrs
        fields = {f.name: None for f in attrs.fields(Instance)}
        fields.update(uuid="u1")
        try:
            instance = Instance(**fields).to_dict()
        except Exception:  # noqa: BLE001 - a record with required values
            self.skipTest("Instance needs more than a uuid")
        result = self.successResultOf(defer.ensureDeferred(
            self.manager.get_console(None, instance, "serial")))
        self.assertEqual(ConsoleInfo.from_dict(result).console_type,
                         "serial")
