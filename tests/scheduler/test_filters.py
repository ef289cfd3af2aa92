"""Each host filter, through select_destinations on real DB rows."""

from __future__ import annotations

import datetime

from twisted.internet import defer

from tests.scheduler.base import SchedulerTestCase, flavor, request_spec
from twisted_compute.scheduler import filters
from twisted_compute.scheduler.filters.image_props_filter import (
    version_satisfies)


class ComputeFilterTests(SchedulerTestCase):
    def test_only_up_enabled_hosts(self):
        self.add_host("ok")
        self.add_host("disabled", disabled=True, memory_mb=8192)
        self.add_host("forced", forced_down=True, memory_mb=8192)
        long_ago = self.now() - datetime.timedelta(
            seconds=self.conf.service_down_time + 5)
        self.add_host("silent", last_seen_up=long_ago, memory_mb=8192)
        self.add_host("orphan", service=False, memory_mb=8192)
        selections = self.select()
        self.assertEqual([s["host"] for s in selections[0]], ["ok"])

    def test_host_goes_down_when_clock_passes_service_down_time(self):
        self.add_host("a", memory_mb=8192)
        self.add_host("b")
        self.assertEqual(self.chosen(), ["a"])
        self.clock.advance(self.conf.service_down_time + 1)
        # b reports again (its service was seen just now); a stays silent.
        self.update_service("b", last_seen_up=self.now())
        self.manager.refresh_host_states(self.context)
        self.assertEqual(self.chosen(), ["b"])

    def test_no_host_up(self):
        self.add_host("a", disabled=True)
        error = self.no_valid_host()
        self.assertIn("ComputeFilter returned 0 of 1", str(error))
        self.assertIn("No valid host was found", str(error))


class AvailabilityZoneFilterTests(SchedulerTestCase):
    def setUp(self):
        super().setUp()
        self.add_host("east1", memory_mb=2048)
        self.add_host("east2", memory_mb=3072)
        self.add_host("plain", memory_mb=8192)
        self.add_aggregate("east", ["east1", "east2"],
                           availability_zone="east")

    def test_requested_zone(self):
        self.assertEqual(self.chosen(request_spec(availability_zone="east")),
                         ["east2"])

    def test_default_zone_holds_hosts_without_aggregate_zone(self):
        self.assertEqual(self.chosen(request_spec(
            availability_zone=self.conf.default_availability_zone)),
            ["plain"])

    def test_no_zone_requested_means_any_host(self):
        self.assertEqual(self.chosen(), ["plain"])

    def test_unknown_zone(self):
        error = self.no_valid_host(request_spec(availability_zone="west"))
        self.assertIn("AvailabilityZoneFilter", str(error))

    def test_zone_host_form_forces_the_host(self):
        self.assertEqual(
            self.chosen(request_spec(availability_zone="east:east1")),
            ["east1"])


class ResourceFilterTests(SchedulerTestCase):
    def test_ram_with_allocation_ratio(self):
        self.add_host("small", memory_mb=1024, ram_ratio=1.0)
        self.add_host("overcommitted", memory_mb=1024, ram_ratio=2.0,
                      memory_mb_used=512)
        spec = request_spec(flavor=flavor(memory_mb=1500))
        # small: 1024 usable; overcommitted: 2048 - 512 = 1536 usable.
        self.assertEqual(self.chosen(spec), ["overcommitted"])
        error = self.no_valid_host(request_spec(
            flavor=flavor(memory_mb=1537)))
        self.assertIn("RamFilter returned 0 of 2", str(error))

    def test_disk_counts_root_ephemeral_and_swap(self):
        self.add_host("a", local_gb=10, local_gb_used=4)
        spec = request_spec(flavor=flavor(root_gb=5, ephemeral_gb=1))
        self.assertEqual(self.chosen(spec), ["a"])
        # 6 GiB + 1 MiB of swap does not fit in the 6 GiB left... after
        # the claim above, nothing is left at all; use a fresh host.
        self.add_host("b", local_gb=10, local_gb_used=4)
        self.manager.refresh_host_states(self.context)
        error = self.no_valid_host(request_spec(
            flavor=flavor(root_gb=5, ephemeral_gb=1, swap=1)))
        self.assertIn("DiskFilter", str(error))

    def test_disk_allocation_ratio(self):
        self.add_host("a", local_gb=10, disk_ratio=2.0)
        self.assertEqual(
            self.chosen(request_spec(flavor=flavor(root_gb=20))), ["a"])

    def test_vcpus_with_allocation_ratio(self):
        self.add_host("a", vcpus=2, cpu_ratio=1.0)
        self.add_host("b", vcpus=2, cpu_ratio=4.0, vcpus_used=5)
        # a: 2 usable; b: 8 - 5 = 3 usable.
        self.assertEqual(
            self.chosen(request_spec(flavor=flavor(vcpus=3))), ["b"])
        error = self.no_valid_host(request_spec(flavor=flavor(vcpus=4)))
        self.assertIn("CoreFilter", str(error))

    def test_row_without_ratio_uses_the_configured_default(self):
        conf = self.conf.with_overrides(DEFAULT={"ram_allocation_ratio": 3.0})
        manager = self.make_manager(conf)
        self.add_host("a", memory_mb=1000, ram_ratio=0.0)
        self.assertEqual(self.chosen(request_spec(
            flavor=flavor(memory_mb=2900)), manager=manager), ["a"])
        self.no_valid_host(request_spec(flavor=flavor(memory_mb=3100)),
                           manager=manager)

    def test_limits_are_the_ratioed_totals(self):
        self.add_host("a", memory_mb=1000, local_gb=10, vcpus=4,
                      ram_ratio=1.5, disk_ratio=2.0, cpu_ratio=4.0)
        [[selection]] = self.select()
        self.assertEqual(selection["limits"],
                         {"memory_mb": 1500.0, "disk_gb": 20.0,
                          "vcpu": 16.0})


class ImagePropertiesFilterTests(SchedulerTestCase):
    def setUp(self):
        super().setUp()
        self.add_host("x86", memory_mb=2048, hypervisor_type="QEMU",
                      hypervisor_version=2011000,
                      cpu_info={"arch": "x86_64"})
        self.add_host("arm", memory_mb=1024, hypervisor_type="QEMU",
                      hypervisor_version=6002000,
                      cpu_info={"arch": "aarch64"})
        self.add_host("fake", memory_mb=512, hypervisor_type="fake",
                      cpu_info={"supported_instances": [
                          ["x86_64", "fake", "exe"]]})

    def image(self, **properties):
        return request_spec(image={"id": "i", "properties": properties},
                            flavor=flavor(memory_mb=128))

    def test_no_properties_any_host(self):
        self.assertEqual(self.chosen(self.image()), ["x86"])

    def test_architecture(self):
        self.assertEqual(self.chosen(self.image(hw_architecture="aarch64")),
                         ["arm"])
        # Aliases and the legacy property name.
        self.assertEqual(self.chosen(self.image(architecture="arm64")),
                         ["arm"])
        self.assertEqual(self.chosen(self.image(hw_architecture="amd64")),
                         ["x86"])
        error = self.no_valid_host(self.image(hw_architecture="s390x"))
        self.assertIn("ImagePropertiesFilter", str(error))

    def test_hypervisor_type_and_vm_mode(self):
        self.assertEqual(self.chosen(self.image(img_hv_type="fake")),
                         ["fake"])
        self.assertEqual(self.chosen(self.image(hw_vm_mode="exe")),
                         ["fake"])
        self.assertEqual(self.chosen(self.image(
            img_hv_type="qemu", hw_vm_mode="hvm",
            hw_architecture="x86_64")), ["x86"])
        self.no_valid_host(self.image(img_hv_type="fake",
                                      hw_vm_mode="hvm"))

    def test_requested_hypervisor_version(self):
        self.assertEqual(self.chosen(self.image(
            img_hv_requested_version=">=6.0")), ["arm"])
        self.assertEqual(self.chosen(self.image(
            img_hv_requested_version=">=2.0,<3.0")), ["x86"])

    def test_version_predicate(self):
        self.assertTrue(version_satisfies(2011000, ">=2.11"))
        self.assertFalse(version_satisfies(2011000, ">2.11"))
        self.assertTrue(version_satisfies(2011000, "2.11.0"))
        self.assertFalse(version_satisfies(2011000, "<2"))
        self.assertFalse(version_satisfies(2011000, "banana"))


class ServerGroupFilterTests(SchedulerTestCase):
    def setUp(self):
        super().setUp()
        for name in ("a", "b", "c"):
            self.add_host(name, memory_mb=8192)
        # Make "b" the one the weighers like best.
        self.update_node("b", memory_mb=16384)

    def spec(self, group, **kw):
        return request_spec(group=group, **kw)

    def test_affinity_follows_existing_members(self):
        group = self.add_group("affinity", members={"c": 1})
        self.assertEqual(self.chosen(self.spec(group), count=3),
                         ["c", "c", "c"])

    def test_affinity_first_member_anywhere_then_together(self):
        group = self.add_group("affinity")
        self.assertEqual(self.chosen(self.spec(group), count=3),
                         ["b", "b", "b"])

    def test_affinity_host_full(self):
        group = self.add_group("affinity", members={"c": 1})
        self.update_node("c", memory_mb=600)
        error = self.no_valid_host(self.spec(group), count=2)
        self.assertIn("instance 2 of 2", str(error))

    def test_anti_affinity_spreads_and_avoids_members(self):
        group = self.add_group("anti-affinity", members={"b": 1})
        chosen = self.chosen(self.spec(group), count=2)
        self.assertEqual(sorted(chosen), ["a", "c"])

    def test_anti_affinity_more_instances_than_hosts(self):
        group = self.add_group("anti-affinity")
        error = self.no_valid_host(self.spec(group), count=4)
        self.assertIn("ServerGroupAntiAffinityFilter", str(error))
        self.assertIn("instance 4 of 4", str(error))

    def test_anti_affinity_max_server_per_host(self):
        group = self.add_group("anti-affinity",
                               rules={"max_server_per_host": 2},
                               members={"b": 1})
        chosen = self.chosen(self.spec(group), count=5)
        self.assertEqual(sorted(chosen), ["a", "a", "b", "c", "c"])

    def test_deleted_members_and_members_without_host_do_not_count(self):
        group = self.add_group("anti-affinity")

        def thd(conn):
            from twisted_compute.db import models as m
            for host, deleted in (("b", True), (None, False)):
                instance_uuid = self.add_instance(conn, host,
                                                  deleted=deleted)
                group_id = conn.execute(m.server_groups.select().where(
                    m.server_groups.c.uuid == group["uuid"])).first().id
                conn.execute(m.server_group_members.insert().values(
                    group_id=group_id, instance_uuid=instance_uuid))

        self.run_db(thd)
        self.assertEqual(self.chosen(self.spec(group)), ["b"])

    def test_anti_affinity_sees_members_placed_but_not_yet_written(self):
        # Two requests of one group: the conductor has not yet written
        # the first member's host when the second is scheduled.
        self.update_node("a", memory_mb=65536, vcpus=64, local_gb=1000)
        group = self.add_group("anti-affinity")
        members = []

        def thd(conn):
            from twisted_compute.db import models as m
            group_id = conn.execute(m.server_groups.select().where(
                m.server_groups.c.uuid == group["uuid"])).first().id
            for _ in range(2):
                instance_uuid = self.add_instance(conn, None)
                conn.execute(m.server_group_members.insert().values(
                    group_id=group_id, instance_uuid=instance_uuid))
                members.append(instance_uuid)

        self.run_db(thd)
        hosts = []
        for member in members:
            d = defer.ensureDeferred(self.manager.select_destinations(
                self.context, self.spec(group), [member]))
            hosts.append(self.successResultOf(d)[0][0]["host"])
        self.assertEqual(hosts[0], "a")
        self.assertNotEqual(hosts[1], "a")

    def test_group_by_hint_only_reads_policy_from_db(self):
        group = self.add_group("affinity", members={"a": 1})
        spec = request_spec(scheduler_hints={"group": group["uuid"]})
        self.assertEqual(self.chosen(spec), ["a"])


class ForcingTests(SchedulerTestCase):
    def setUp(self):
        super().setUp()
        self.add_host("a", memory_mb=8192)
        self.add_host("b", memory_mb=1024, disabled=True)
        self.add_host("c", memory_mb=2048)

    def test_force_hosts_skips_non_resource_filters(self):
        self.assertEqual(self.chosen(request_spec(force_hosts=["b"])),
                         ["b"])
        self.assertEqual(self.chosen(request_spec(force_hosts="B")), ["b"])
        # ... but not the resource ones.
        error = self.no_valid_host(request_spec(
            force_hosts=["b"], flavor=flavor(memory_mb=4096)))
        self.assertIn("RamFilter", str(error))

    def test_force_nodes(self):
        self.assertEqual(self.chosen(request_spec(force_nodes=["c"])),
                         ["c"])

    def test_force_unknown_host(self):
        error = self.no_valid_host(request_spec(force_hosts=["nope"]))
        self.assertIn("forced host", str(error))

    def test_requested_destination_runs_filters(self):
        self.assertEqual(self.chosen(request_spec(
            requested_destination={"host": "c"})), ["c"])
        error = self.no_valid_host(request_spec(
            requested_destination={"host": "b"}))
        self.assertIn("ComputeFilter", str(error))

    def test_ignore_hosts(self):
        self.assertEqual(self.chosen(request_spec(ignore_hosts=["a"])),
                         ["c"])
        error = self.no_valid_host(request_spec(ignore_hosts=["a", "c"]))
        self.assertIn("ComputeFilter", str(error))
        error = self.no_valid_host(request_spec(
            ignore_hosts=["a", "b", "c"]))
        self.assertIn("already tried", str(error))


class LoadFiltersTests(SchedulerTestCase):
    def test_unknown_filter_is_named(self):
        conf = self.conf.with_overrides(filter_scheduler={
            "enabled_filters": ["RamFilter", "MagicFilter"]})
        error = self.assertRaises(ValueError, self.make_manager, conf)
        self.assertIn("MagicFilter", str(error))
        self.assertIn("enabled_filters", str(error))

    def test_disabled_filter_does_not_run(self):
        conf = self.conf.with_overrides(filter_scheduler={
            "enabled_filters": ["ComputeFilter"]})
        self.add_host("tiny", memory_mb=128)
        manager = self.make_manager(conf)
        [[selection]] = self.select(request_spec(
            flavor=flavor(memory_mb=4096)), manager=manager)
        self.assertEqual(selection["host"], "tiny")
        self.assertEqual(selection["limits"], {})

    def test_every_filter_is_known_by_its_nova_name(self):
        self.assertEqual(
            set(filters.all_filters()) - {"VCPUFilter"},
            set(self.conf.filter_scheduler.enabled_filters))
