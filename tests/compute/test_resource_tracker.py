"""The resource tracker: claims against capacity times allocation ratios,
release, usage from the tracked instances, the node report."""

from __future__ import annotations

import uuid as uuidlib

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import config, exception
from twisted_compute.compute.resource_tracker import ResourceTracker
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance
from twisted_compute.virt.fake import FakeDriver


def make_instance(vcpus=1, memory_mb=512, root_gb=10, ephemeral_gb=0,
                  **kw) -> Instance:
    values = dict(id=1, uuid=str(uuidlib.uuid4()), user_id="u",
                  project_id="p", vm_state=vm_states.BUILDING, vcpus=vcpus,
                  memory_mb=memory_mb, root_gb=root_gb,
                  ephemeral_gb=ephemeral_gb)
    values.update(kw)
    return Instance(**values)


class ResourceTrackerTests(SynchronousTestCase):

    def make_tracker(self, vcpus=4, memory_mb=4096, local_gb=100,
                     **ratios) -> ResourceTracker:
        conf = config.load()
        if ratios:
            conf = conf.with_overrides(DEFAULT=ratios)
        driver = FakeDriver(conf, Clock(), host="hv1", vcpus=vcpus,
                            memory_mb=memory_mb, local_gb=local_gb)
        tracker = ResourceTracker(conf, "hv1", driver)
        self.successResultOf(defer.ensureDeferred(tracker.refresh()))
        return tracker

    def test_default_ratios_are_novas(self):
        tracker = self.make_tracker()
        self.assertEqual((tracker.cpu_allocation_ratio,
                          tracker.ram_allocation_ratio,
                          tracker.disk_allocation_ratio), (16.0, 1.5, 1.0))
        self.assertEqual(tracker.limits, {"vcpus": 64.0,
                                          "memory_mb": 6144.0,
                                          "disk_gb": 100.0})

    def test_claims_add_up_until_full(self):
        tracker = self.make_tracker(cpu_allocation_ratio=1.0,
                                    ram_allocation_ratio=1.0)
        claims = [tracker.claim(make_instance(vcpus=1, memory_mb=512,
                                              root_gb=20))
                  for _ in range(4)]
        self.assertEqual(tracker.usage(), {
            "vcpus_used": 4, "memory_mb_used": 2048, "local_gb_used": 80,
            "running_vms": 4})
        with self.assertRaises(exception.ComputeResourcesUnavailable) as c:
            tracker.claim(make_instance(vcpus=1, memory_mb=1, root_gb=1))
        self.assertIn("vcpus", str(c.exception))
        self.assertNotIn("memory_mb", str(c.exception))
        claims[0].abort()
        tracker.claim(make_instance(vcpus=1, memory_mb=1, root_gb=1))

    def test_over_capacity_names_every_resource(self):
        tracker = self.make_tracker()
        with self.assertRaises(exception.ComputeResourcesUnavailable) as c:
            tracker.claim(make_instance(vcpus=65, memory_mb=6145,
                                        root_gb=90, ephemeral_gb=11))
        message = str(c.exception)
        for name in ("vcpus", "memory_mb", "disk_gb", "hv1"):
            self.assertIn(name, message)
        self.assertEqual(tracker.usage()["running_vms"], 0)

    def test_ratios_allow_overcommit(self):
        tracker = self.make_tracker(vcpus=2, memory_mb=1000, local_gb=10,
                                    cpu_allocation_ratio=2.0,
                                    ram_allocation_ratio=2.0,
                                    disk_allocation_ratio=2.0)
        tracker.claim(make_instance(vcpus=4, memory_mb=2000, root_gb=20))
        with self.assertRaises(exception.ComputeResourcesUnavailable):
            tracker.claim(make_instance(vcpus=1, memory_mb=1, root_gb=0))

    def test_release_is_idempotent(self):
        tracker = self.make_tracker()
        claim = tracker.claim(make_instance(vcpus=2))
        claim.release()
        claim.abort()
        self.assertEqual(tracker.usage()["vcpus_used"], 0)

    def test_finished_claim_counts_as_instance(self):
        tracker = self.make_tracker()
        instance = make_instance(vcpus=3)
        tracker.claim(instance).finish()
        self.assertEqual(tracker.claims, {})
        self.assertEqual(tracker.usage()["vcpus_used"], 3)
        tracker.drop(instance.uuid)
        self.assertEqual(tracker.usage()["vcpus_used"], 0)

    def test_usage_from_instances_on_host(self):
        tracker = self.make_tracker()
        building = tracker.claim(make_instance(vcpus=1, memory_mb=100))
        tracker.set_instances([
            make_instance(vcpus=2, memory_mb=200,
                          vm_state=vm_states.ACTIVE),
            make_instance(vcpus=4, memory_mb=400, vm_state=vm_states.ERROR),
            make_instance(vcpus=8, memory_mb=800,
                          vm_state=vm_states.DELETED),
        ])
        usage = tracker.usage()
        self.assertEqual(usage["vcpus_used"], 7)  # claim kept, deleted not
        self.assertEqual(usage["memory_mb_used"], 700)
        self.assertEqual(usage["running_vms"], 3)
        building.abort()
        self.assertEqual(tracker.usage()["vcpus_used"], 6)

    def test_reclaim_replaces_the_old_usage(self):
        tracker = self.make_tracker(vcpus=2, cpu_allocation_ratio=1.0)
        instance = make_instance(vcpus=2)
        tracker.set_instances([instance])
        tracker.claim(instance)  # same instance: no double count
        self.assertEqual(tracker.usage()["vcpus_used"], 2)

    def test_aborted_reclaim_keeps_the_old_usage(self):
        tracker = self.make_tracker(vcpus=4, cpu_allocation_ratio=1.0)
        instance = make_instance(vcpus=2)
        tracker.set_instances([instance])
        tracker.claim(make_instance(uuid=instance.uuid, vcpus=3)).abort()
        self.assertEqual(tracker.usage()["vcpus_used"], 2)
        self.assertEqual(list(tracker.instances), [instance.uuid])

    def test_claim_before_resources_known(self):
        conf = config.load()
        tracker = ResourceTracker(conf, "hv1",
                                  FakeDriver(conf, Clock(), host="hv1"))
        with self.assertRaises(exception.ComputeResourcesUnavailable):
            tracker.claim(make_instance())

    def test_node_report(self):
        tracker = self.make_tracker(vcpus=4, memory_mb=4096, local_gb=100)
        tracker.claim(make_instance(vcpus=2, memory_mb=1024, root_gb=10,
                                    ephemeral_gb=5))
        values = tracker.compute_node_values()
        self.assertEqual(values["host"], "hv1")
        self.assertEqual(values["hypervisor_hostname"], "hv1")
        self.assertEqual(values["hypervisor_type"], "fake")
        self.assertEqual((values["vcpus"], values["memory_mb"],
                          values["local_gb"]), (4, 4096, 100))
        self.assertEqual((values["vcpus_used"], values["memory_mb_used"],
                          values["local_gb_used"], values["running_vms"]),
                         (2, 1024, 15, 1))
        self.assertEqual(values["cpu_allocation_ratio"], 16.0)
        self.assertIn("cpu_info", values)
        self.assertIn(" up ", values["uptime"])
