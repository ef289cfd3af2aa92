"""The fake virt driver: capacity, power states that follow the actions,
injected failures and delays on the clock, one state per host."""

from __future__ import annotations

import json
import os
import random
import uuid as uuidlib

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_compute import config, exception
from twisted_compute.context import get_admin_context
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.virt import power_state
from twisted_compute.virt.driver import HARD, SOFT, IComputeDriver, \
    InstanceInfo, load_driver
from twisted_compute.virt.fake import FakeDriver


def make_instance(n: int = 1, **kw) -> Instance:
    values = dict(id=n, uuid=str(uuidlib.uuid4()), user_id="u",
                  project_id="p", vm_state=vm_states.BUILDING, vcpus=2,
                  memory_mb=1024, root_gb=10, ephemeral_gb=5,
                  display_name=f"vm{n}")
    values.update(kw)
    return Instance(**values)


class FakeDriverTests(SynchronousTestCase):

    def setUp(self):
        self.clock = Clock()
        self.conf = config.load()
        self.ctx = get_admin_context()
        self.driver = FakeDriver(self.conf, self.clock, host="hv1")

    def spawn(self, instance, driver=None):
        driver = driver or self.driver
        return driver.spawn(self.ctx, instance, {}, [], None, [], None)

    def state(self, instance) -> int:
        return self.successResultOf(self.driver.get_info(instance)).state

    def test_provides_the_interface(self):
        self.assertTrue(verifyObject(IComputeDriver, self.driver))

    def test_load_driver_by_name(self):
        driver = load_driver(self.conf.with_overrides(
            DEFAULT={"compute_driver": "fake"}), self.clock, host="h9")
        self.assertIsInstance(driver, FakeDriver)
        self.assertEqual(
            self.successResultOf(driver.get_available_nodes()), ["h9"])

    def test_load_driver_unknown_name(self):
        conf = self.conf.with_overrides(DEFAULT={"compute_driver":
                                                 "hyperv"})
        with self.assertRaises(exception.VirtDriverNotAvailable) as caught:
            load_driver(conf, self.clock)
        self.assertIn("hyperv", str(caught.exception))
        self.assertIn("fake", str(caught.exception))

    def test_capacity_from_config(self):
        conf = self.conf.with_overrides(fake_driver={
            "vcpus": 4, "memory_mb": 2048, "local_gb": 40})
        driver = FakeDriver(conf, self.clock, host="small")
        self.successResultOf(driver.init_host("small"))
        res = self.successResultOf(driver.get_available_resource("small"))
        self.assertEqual((res["vcpus"], res["memory_mb"], res["local_gb"]),
                         (4, 2048, 40))
        self.assertEqual(res["hypervisor_hostname"], "small")
        self.assertEqual(res["hypervisor_type"], "fake")
        self.assertIsInstance(res["hypervisor_version"], int)
        self.assertEqual(json.loads(res["cpu_info"])["topology"]["cores"], 4)
        self.assertEqual((res["vcpus_used"], res["running_vms"]), (0, 0))

    def test_usage_follows_guests(self):
        a, b = make_instance(1), make_instance(2, vcpus=1, memory_mb=256,
                                               root_gb=1, ephemeral_gb=0)
        self.successResultOf(self.spawn(a))
        self.successResultOf(self.spawn(b))
        res = self.successResultOf(self.driver.get_available_resource("hv1"))
        self.assertEqual(res["vcpus_used"], 3)
        self.assertEqual(res["memory_mb_used"], 1280)
        self.assertEqual(res["local_gb_used"], 16)
        self.assertEqual(res["running_vms"], 2)
        self.successResultOf(self.driver.destroy(self.ctx, a, []))
        res = self.successResultOf(self.driver.get_available_resource("hv1"))
        self.assertEqual(res["vcpus_used"], 1)

    def test_uptime_counts_on_the_clock(self):
        self.clock.advance(3 * 86400 + 2 * 3600 + 5 * 60 + 7)
        res = self.successResultOf(self.driver.get_available_resource("hv1"))
        self.assertEqual(res["uptime"], " 02:05:07 up 3 days,  2:05,  "
                         "0 users,  load average: 0.00, 0.00, 0.00")

    def test_format_uptime(self):
        from twisted_compute.virt.driver import format_uptime
        self.assertEqual(format_uptime(59, 59), " 00:00:59 up 0 min")
        self.assertEqual(format_uptime(86400 + 3600, 86400 + 3600, 1,
                                       (0.2, 0.12, 1.5)),
                         " 01:00:00 up 1 day,  1:00,  1 user,  load "
                         "average: 0.20, 0.12, 1.50")
        # the form the openstack CLI parses (host time, up, users, load)
        import re
        line = format_uptime(0, 93 * 86400 + 18 * 3600 + 25 * 60, 12,
                             (0.2, 0.12, 0.14))
        match = re.match(r"\s*(.+)\sup\s+(.+),\s+(.+)\susers?,\s+"
                         r"load average:\s(.+)", line)
        self.assertEqual(match.groups(), (
            "00:00:00", "93 days, 18:25", "12", "0.20, 0.12, 0.14"))

    def test_host_uptime_reads_proc(self):
        from twisted_compute.virt.driver import host_uptime
        proc = self.mktemp()
        os.makedirs(proc)
        utmp = os.path.join(proc, "utmp")
        self.assertIsNone(host_uptime(0, proc, utmp))
        with open(os.path.join(proc, "uptime"), "w") as handle:
            handle.write("7260.50 100.0\n")
        self.assertEqual(host_uptime(0, proc, utmp),
                         " 00:00:00 up  2:01,  0 users")
        with open(os.path.join(proc, "loadavg"), "w") as handle:
            handle.write("0.50 0.25 0.10 1/100 42\n")
        # two logged-in users (type 7) and a boot record (type 2)
        with open(utmp, "wb") as handle:
            for kind in (2, 7, 7):
                handle.write(kind.to_bytes(4, "little") + bytes(380))
        self.assertEqual(host_uptime(0, proc, utmp), " 00:00:00 up  2:01,  "
                         "2 users,  load average: 0.50, 0.25, 0.10")

    def test_unknown_node(self):
        self.failureResultOf(self.driver.get_available_resource("other"),
                             exception.HypervisorNotFound)

    def test_spawn_runs_the_guest(self):
        instance = make_instance()
        self.successResultOf(self.spawn(instance))
        info = self.successResultOf(self.driver.get_info(instance))
        self.assertIsInstance(info, InstanceInfo)
        self.assertEqual(info.state, power_state.RUNNING)
        self.assertTrue(info.internal_id)
        self.assertEqual(
            self.successResultOf(self.driver.list_instance_uuids()),
            [instance.uuid])

    def test_spawn_twice_is_refused(self):
        instance = make_instance()
        self.successResultOf(self.spawn(instance))
        self.failureResultOf(self.spawn(instance), exception.InstanceExists)

    def test_spawn_delay_on_the_clock(self):
        driver = FakeDriver(self.conf, self.clock, host="hv1",
                            spawn_delay=5)
        instance = make_instance()
        d = self.spawn(instance, driver)
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.assertEqual(self.successResultOf(driver.get_info(instance))
                         .state, power_state.NOSTATE)
        self.clock.advance(0.1)
        self.successResultOf(d)
        self.assertEqual(self.successResultOf(driver.get_info(instance))
                         .state, power_state.RUNNING)

    def test_spawn_can_be_cancelled(self):
        driver = FakeDriver(self.conf, self.clock, host="hv1",
                            spawn_delay=5)
        instance = make_instance()
        d = self.spawn(instance, driver)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.clock.advance(10)
        self.assertNotEqual(self.successResultOf(driver.get_info(instance))
                            .state, power_state.RUNNING)

    def test_fail_spawn_leaves_a_defined_guest(self):
        driver = FakeDriver(self.conf, self.clock, host="bad",
                            fail_spawn=True)
        instance = make_instance()
        failure = self.failureResultOf(self.spawn(instance, driver),
                                       exception.InstanceSpawnFailure)
        self.assertIn(instance.uuid, failure.getErrorMessage())
        self.assertEqual(
            self.successResultOf(driver.list_instance_uuids()),
            [instance.uuid])
        self.successResultOf(driver.destroy(self.ctx, instance, []))
        self.assertEqual(
            self.successResultOf(driver.list_instance_uuids()), [])

    def test_fail_spawn_from_config(self):
        conf = self.conf.with_overrides(fake_driver={"fail_spawn": True})
        driver = FakeDriver(conf, self.clock, host="bad")
        self.failureResultOf(self.spawn(make_instance(), driver),
                             exception.InstanceSpawnFailure)

    def test_fail_spawn_ratio(self):
        driver = FakeDriver(self.conf, self.clock, host="flaky",
                            fail_spawn_ratio=0.5,
                            random=random.Random(1234))
        results = []
        for n in range(200):
            d = self.spawn(make_instance(n), driver)
            d.addCallbacks(lambda _: results.append(True),
                           lambda f: results.append(False))
        failed = results.count(False)
        self.assertEqual(len(results), 200)
        self.assertTrue(60 < failed < 140, failed)

    def test_power_states_follow_actions(self):
        instance = make_instance()
        self.successResultOf(self.spawn(instance))
        steps = [
            (lambda: self.driver.pause(instance), power_state.PAUSED),
            (lambda: self.driver.unpause(instance), power_state.RUNNING),
            (lambda: self.driver.suspend(self.ctx, instance),
             power_state.SUSPENDED),
            (lambda: self.driver.resume(self.ctx, instance, []),
             power_state.RUNNING),
            (lambda: self.driver.power_off(instance), power_state.SHUTDOWN),
            (lambda: self.driver.power_on(self.ctx, instance, []),
             power_state.RUNNING),
            (lambda: self.driver.reboot(self.ctx, instance, [], SOFT),
             power_state.RUNNING),
            (lambda: self.driver.power_off(instance), power_state.SHUTDOWN),
            (lambda: self.driver.reboot(self.ctx, instance, [], HARD),
             power_state.RUNNING),
        ]
        for action, expected in steps:
            self.successResultOf(action())
            self.assertEqual(self.state(instance), expected)

    def test_wrong_transitions_fail_like_a_hypervisor(self):
        instance = make_instance()
        self.successResultOf(self.spawn(instance))
        for action in (lambda: self.driver.unpause(instance),
                       lambda: self.driver.resume(self.ctx, instance, []),
                       lambda: self.driver.power_on(self.ctx, instance, [])):
            failure = self.failureResultOf(
                action(), exception.InstancePowerStateTransitionError)
            self.assertIn("running", failure.getErrorMessage())
            self.assertEqual(self.state(instance), power_state.RUNNING)
        self.successResultOf(self.driver.power_off(instance))
        self.failureResultOf(self.driver.pause(instance),
                             exception.InstancePowerStateTransitionError)
        self.failureResultOf(
            self.driver.reboot(self.ctx, instance, [], SOFT),
            exception.InstancePowerStateTransitionError)
        self.assertEqual(self.state(instance), power_state.SHUTDOWN)
        # Powering off what is off is harmless, as libvirt's driver.
        self.successResultOf(self.driver.power_off(instance))

    def test_unknown_instance(self):
        instance = make_instance()
        self.failureResultOf(self.driver.get_info(instance),
                             exception.InstanceNotFound)
        self.failureResultOf(self.driver.pause(instance),
                             exception.InstanceNotFound)
        self.failureResultOf(
            self.driver.get_console_output(self.ctx, instance),
            exception.InstanceNotFound)
        # destroy of an unknown guest is a no-op
        self.successResultOf(self.driver.destroy(self.ctx, instance, []))

    def test_bad_reboot_type(self):
        instance = make_instance()
        self.successResultOf(self.spawn(instance))
        self.failureResultOf(
            self.driver.reboot(self.ctx, instance, [], "GENTLE"),
            exception.InvalidInput)

    def test_console_output_names_the_instance(self):
        instance = make_instance()
        self.successResultOf(self.spawn(instance))
        self.successResultOf(self.driver.power_off(instance))
        output = self.successResultOf(
            self.driver.get_console_output(self.ctx, instance))
        self.assertIsInstance(output, bytes)
        text = output.decode()
        self.assertIn(instance.uuid, text)
        self.assertIn("power off", text)

    def test_drivers_share_no_state(self):
        one = FakeDriver(self.conf, self.clock, host="a")
        two = FakeDriver(self.conf, self.clock, host="b")
        instance = make_instance()
        self.successResultOf(self.spawn(instance, one))
        self.assertEqual(self.successResultOf(two.list_instance_uuids()), [])
        self.failureResultOf(two.get_info(instance),
                             exception.InstanceNotFound)
        self.assertEqual(self.successResultOf(one.get_available_nodes()),
                         ["a"])
        self.assertEqual(self.successResultOf(two.get_available_nodes()),
                         ["b"])

    def test_snapshot_uploads_the_disk_and_walks_the_task_states(self):
        instance = make_instance()
        self.failureResultOf(
            self.driver.snapshot(self.ctx, instance, "img", None, None),
            exception.InstanceNotFound)
        self.successResultOf(self.driver.spawn(
            self.ctx, instance, {"id": "base"}, [], None, [], None))
        states, uploads = [], []

        def update(task_state, expected_state=None):
            states.append((task_state, expected_state))
            return defer.succeed(None)

        def upload(data, disk_format, container_format="bare"):
            uploads.append((data, disk_format))
            return defer.succeed(None)
        self.successResultOf(self.driver.snapshot(
            self.ctx, instance, "img", update, upload))
        self.assertEqual(states, [
            ("image_pending_upload", "image_snapshot"),
            ("image_uploading", "image_pending_upload")])
        self.assertEqual(uploads, [(b"fake disk of image base\n", "raw")])
        self.assertEqual(self.driver.guests[instance.uuid].state,
                         power_state.RUNNING)


class CapabilitiesTests(SynchronousTestCase):

    def test_drivers_share_one_table(self):
        from twisted_compute.virt.driver import CAPABILITIES, \
            driver_capabilities
        self.assertEqual(FakeDriver.capabilities, CAPABILITIES)
        self.assertFalse(FakeDriver.capabilities["has_imagecache"])
        self.assertTrue(FakeDriver.capabilities["supports_image_type_qcow2"])
        changed = driver_capabilities(has_imagecache=True)
        self.assertTrue(changed["has_imagecache"])
        self.assertFalse(CAPABILITIES["has_imagecache"])  # not changed
        self.assertEqual(set(changed), set(CAPABILITIES))
        with self.assertRaises(ValueError):
            driver_capabilities(supports_teleport=True)


class FakeRebuildTests(SynchronousTestCase):
    def setUp(self):
        self.driver = FakeDriver(config.load(), Clock(), host="hv1")
        self.ctx = get_admin_context()

    def test_rebuild_records_and_honours_preserve_ephemeral(self):
        instance = make_instance(ephemeral_gb=5)
        self.successResultOf(self.driver.spawn(
            self.ctx, instance, {"id": "img-1"}, [], None, [], None))
        guest = self.driver.guests[instance.uuid]
        guest.ephemeral += b"user data on the ephemeral disk"
        self.successResultOf(self.driver.rebuild(
            self.ctx, instance, {"id": "img-2"}, [], None,
            preserve_ephemeral=True))
        self.assertTrue(guest.preserved_ephemeral)
        self.assertEqual(bytes(guest.ephemeral),
                         b"user data on the ephemeral disk")
        self.assertEqual(guest.image_id, "img-2")
        self.assertIn(b"img-2", bytes(guest.disk))
        self.successResultOf(self.driver.rebuild(
            self.ctx, instance, {"id": "img-3"}, [], None))
        self.assertFalse(guest.preserved_ephemeral)
        self.assertEqual(bytes(guest.ephemeral), b"")

    def test_rescue_legacy_or_stable_device(self):
        instance = make_instance(config_drive="True")
        self.successResultOf(self.driver.spawn(
            self.ctx, instance, {"id": "img-1"}, [], None, [], None))
        guest = self.driver.guests[instance.uuid]
        self.successResultOf(self.driver.rescue(
            self.ctx, instance, {"id": "r-1"}, "pw"))
        self.assertEqual(guest.disks, ["rescue:r-1", "img-1"])
        self.assertIsNone(guest.rescue_device)
        self.assertTrue(guest.rescue_config_drive)
        self.successResultOf(self.driver.unrescue(self.ctx, instance))
        self.successResultOf(self.driver.rescue(
            self.ctx, instance, {"id": "r-2", "properties": {
                "hw_rescue_bus": "scsi"}}, "pw"))
        self.assertEqual(guest.disks, ["img-1", "rescue:r-2"])
        self.assertEqual(guest.rescue_device, ("disk", "scsi"))
