"""Weighers: normalization, multipliers, host_subset_size."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.scheduler.base import SchedulerTestCase, request_spec
from twisted_compute.scheduler import weighers


class NormalizeTests(SynchronousTestCase):
    def test_scaled_to_unit_interval(self):
        self.assertEqual(weighers.normalize([10, 20, 15]), [0.0, 1.0, 0.5])
        self.assertEqual(weighers.normalize([-4, 0]), [0.0, 1.0])

    def test_equal_values_weigh_nothing(self):
        self.assertEqual(weighers.normalize([7, 7]), [0.0, 0.0])
        self.assertEqual(weighers.normalize([]), [])


class WeigherTests(SchedulerTestCase):
    def setUp(self):
        super().setUp()
        # ram-rich: most free RAM; cpu-rich: most free vCPUs;
        # disk-rich: most free disk.
        self.add_host("ram-rich", memory_mb=16384, vcpus=4, local_gb=100)
        self.add_host("cpu-rich", memory_mb=8192, vcpus=32, local_gb=100)
        self.add_host("disk-rich", memory_mb=8192, vcpus=4, local_gb=900)

    def manager_with(self, ram=0.0, cpu=0.0, disk=0.0, **more):
        conf = self.conf.with_overrides(filter_scheduler=dict(
            ram_weight_multiplier=ram, cpu_weight_multiplier=cpu,
            disk_weight_multiplier=disk, **more))
        return self.make_manager(conf)

    def test_each_weigher_prefers_its_free_resource(self):
        for multipliers, expected in (({"ram": 1.0}, "ram-rich"),
                                      ({"cpu": 1.0}, "cpu-rich"),
                                      ({"disk": 1.0}, "disk-rich")):
            manager = self.manager_with(**multipliers)
            self.assertEqual(self.select(manager=manager)[0][0]["host"],
                             expected, multipliers)

    def test_negative_multiplier_stacks(self):
        manager = self.manager_with(ram=-1.0)
        self.assertNotEqual(self.select(manager=manager)[0][0]["host"],
                            "ram-rich")
        # All three 8 GiB-or-more hosts: stacking keeps choosing the
        # fullest one, which is never the RAM-rich host.
        hosts = {self.select(manager=manager)[0][0]["host"]
                 for _ in range(4)}
        self.assertNotIn("ram-rich", hosts)

    def test_multipliers_are_summed_after_normalization(self):
        # RAM: ram-rich 1, others 0.  CPU: cpu-rich 1, others 0.  With
        # cpu counting double, cpu-rich wins; with RAM double, ram-rich.
        manager = self.manager_with(ram=1.0, cpu=2.0)
        self.assertEqual(self.select(manager=manager)[0][0]["host"],
                         "cpu-rich")
        manager = self.manager_with(ram=2.0, cpu=1.0)
        self.assertEqual(self.select(manager=manager)[0][0]["host"],
                         "ram-rich")

    def test_alternates_in_weight_order(self):
        manager = self.manager_with(ram=1.0, disk=0.5)
        [selection] = self.select(manager=manager)
        self.assertEqual([s["host"] for s in selection],
                         ["ram-rich", "disk-rich", "cpu-rich"])

    def test_host_subset_size_picks_among_the_best(self):
        self.add_host("worst", memory_mb=4096, vcpus=1, local_gb=10)
        seen = set()
        for seed in range(20):
            # A new scheduler each time: no claims from earlier rounds.
            manager = self.manager_with(ram=1.0, host_subset_size=2)
            manager.random.seed(seed)
            [selection] = self.select(manager=manager)
            seen.add(selection[0]["host"])
        # The two best by RAM are ram-rich and one of the 8 GiB hosts
        # (the first in the filters' order, cpu-rich, on a tie).
        self.assertEqual(seen, {"ram-rich", "cpu-rich"})

    def test_soft_anti_affinity_prefers_hosts_without_members(self):
        group = self.add_group("soft-anti-affinity",
                               members={"ram-rich": 2, "cpu-rich": 1})
        # Normalized: RAM gives ram-rich 1; the group gives disk-rich 1,
        # cpu-rich 0.5, ram-rich 0; doubled, the group decides.
        manager = self.manager_with(
            ram=1.0, soft_anti_affinity_weight_multiplier=2.0)
        self.assertEqual(self.select(request_spec(group=group),
                                     manager=manager)[0][0]["host"],
                         "disk-rich")

    def test_soft_affinity_prefers_hosts_with_members(self):
        group = self.add_group("soft-affinity", members={"cpu-rich": 1})
        manager = self.manager_with(ram=1.0)
        self.assertEqual(self.select(request_spec(group=group),
                                     manager=manager)[0][0]["host"],
                         "ram-rich")
        manager = self.manager_with(
            ram=1.0, soft_affinity_weight_multiplier=2.0)
        chosen = [r[0]["host"] for r in self.select(
            request_spec(group=group), count=2, manager=manager)]
        self.assertEqual(chosen, ["cpu-rich", "cpu-rich"])

    def test_unknown_weigher_is_named(self):
        conf = self.conf.with_overrides(filter_scheduler={
            "weight_classes": ["RAMWeigher", "NoSuchWeigher"]})
        error = self.assertRaises(ValueError, self.make_manager, conf)
        self.assertIn("NoSuchWeigher", str(error))
