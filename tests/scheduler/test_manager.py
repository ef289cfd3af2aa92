"""select_destinations: claims, capacity, alternates, NoValidHost, and
the host state cache."""

from __future__ import annotations

import collections
import datetime

from twisted.internet import defer

from tests.base import DBStub
from tests.scheduler.base import (
    SchedulerTestCase, flavor, request_spec)
from twisted_compute import exception
from twisted_compute.db import services as services_db
from twisted_compute.scheduler import host_state
from twisted_compute.scheduler.manager import SchedulerManager


class ClaimTests(SchedulerTestCase):
    def test_burst_spreads_over_equal_hosts(self):
        for name in ("a", "b", "c"):
            self.add_host(name, memory_mb=4096)
        chosen = [self.chosen()[0] for _ in range(3)]
        self.assertEqual(sorted(chosen), ["a", "b", "c"])

    def test_multi_create_spreads(self):
        for name in ("a", "b", "c"):
            self.add_host(name, memory_mb=4096)
        self.assertEqual(sorted(self.chosen(count=3)), ["a", "b", "c"])

    def test_no_host_over_capacity(self):
        # Room for 4 + 2 + 1 instances of 1 GiB / 1 vCPU / 10 GB.
        self.add_host("a", memory_mb=4096, vcpus=8, local_gb=100)
        self.add_host("b", memory_mb=8192, vcpus=2, local_gb=100)
        self.add_host("c", memory_mb=8192, vcpus=8, local_gb=10)
        spec = request_spec(flavor=flavor(memory_mb=1024, vcpus=1,
                                          root_gb=10))
        placed = collections.Counter(
            self.chosen(spec)[0] for _ in range(7))
        self.assertEqual(placed, {"a": 4, "b": 2, "c": 1})
        error = self.no_valid_host(spec)
        self.assertIn("returned 0 of", str(error))

    def test_multi_create_is_all_or_nothing(self):
        self.add_host("a", memory_mb=2048)
        spec = request_spec(flavor=flavor(memory_mb=1024))
        error = self.no_valid_host(spec, count=3)
        self.assertIn("instance 3 of 3", str(error))
        self.assertIn("RamFilter", str(error))
        # Nothing stayed claimed: two still fit.
        self.assertEqual(self.chosen(spec, count=2), ["a", "a"])

    def test_claim_forgotten_when_the_node_reports_after_it(self):
        self.add_host("a", memory_mb=2048)
        spec = request_spec(flavor=flavor(memory_mb=1024))
        self.chosen(spec, count=2)
        self.no_valid_host(spec)
        # The node reports, but the report is older than the claims:
        # they stay.
        self.clock.advance(10)
        self.manager.refresh_host_states(self.context)
        self.no_valid_host(spec)
        # A report barely after the claims may not count their instances
        # yet: they stay too.
        claimed_at = self.now() - datetime.timedelta(seconds=10)
        self.update_node("a", updated_at=claimed_at + datetime.timedelta(
            seconds=host_state.REPORT_GRACE_SECONDS / 2))
        self.manager.refresh_host_states(self.context)
        self.no_valid_host(spec)
        # A report made after the claims, showing one instance running
        # (the other's build failed): one instance fits again.
        self.update_node("a", memory_mb_used=1024, running_vms=1,
                         updated_at=self.now())
        self.clock.advance(1)
        self.manager.refresh_host_states(self.context)
        self.assertEqual(self.chosen(spec), ["a"])
        self.no_valid_host(spec)

    def test_claim_times_out(self):
        self.add_host("a", memory_mb=1024)
        spec = request_spec(flavor=flavor(memory_mb=1024))
        self.chosen(spec)
        self.no_valid_host(spec)
        self.clock.advance(self.conf.scheduler.host_claim_timeout - 1)
        self.update_service("a", last_seen_up=self.now())
        self.no_valid_host(spec)
        self.clock.advance(2)
        self.assertEqual(self.chosen(spec), ["a"])


class AlternateTests(SchedulerTestCase):
    def setUp(self):
        super().setUp()
        for index, name in enumerate(["a", "b", "c", "d", "e"]):
            self.add_host(name, memory_mb=8192 - index * 1024)

    def test_chosen_first_then_max_attempts_minus_one(self):
        [selection] = self.select()
        self.assertEqual([s["host"] for s in selection], ["a", "b", "c"])
        for item in selection:
            self.assertEqual(set(item), {"host", "nodename",
                                         "compute_node_uuid", "limits"})
        self.assertEqual(selection[0]["nodename"], "a")

    def test_max_attempts(self):
        conf = self.conf.with_overrides(scheduler={"max_attempts": 5})
        [selection] = self.select(manager=self.make_manager(conf))
        self.assertEqual(len(selection), 5)
        self.assertEqual(len({s["host"] for s in selection}), 5)
        conf = self.conf.with_overrides(scheduler={"max_attempts": 1})
        [selection] = self.select(manager=self.make_manager(conf))
        self.assertEqual(len(selection), 1)

    def test_without_alternates(self):
        self.assertEqual(self.select(return_alternates=False), [
            [{"host": "a", "nodename": "a",
              "compute_node_uuid": self.manager.host_manager._ordered[0]
              .uuid,
              "limits": {"memory_mb": 8192.0, "disk_gb": 100.0,
                         "vcpu": 4.0}}]])

    def test_alternates_exclude_every_chosen_host(self):
        selections = self.select(count=2)
        chosen = {s[0]["host"] for s in selections}
        self.assertEqual(len(chosen), 2)
        for selection in selections:
            alternates = {s["host"] for s in selection[1:]}
            self.assertEqual(len(alternates), 2)
            self.assertFalse(alternates & chosen)

    def test_alternates_must_pass_the_filters(self):
        self.update_service("b", disabled=True)
        self.manager.refresh_host_states(self.context)
        spec = request_spec(flavor=flavor(memory_mb=5200))
        [selection] = self.select(spec)
        # b is disabled, d and e are too small.
        self.assertEqual([s["host"] for s in selection], ["a", "c"])

    def test_results_are_json(self):
        import json
        selections = self.select(count=2)
        self.assertEqual(json.loads(json.dumps(selections)), selections)


class NoValidHostTests(SchedulerTestCase):
    def test_no_compute_nodes(self):
        error = self.no_valid_host()
        self.assertIn("No compute node", str(error))
        self.assertEqual(error.code, 500)

    def test_reason_names_the_filter(self):
        self.add_host("a", memory_mb=512)
        error = self.no_valid_host(request_spec(
            flavor=flavor(memory_mb=1024)))
        self.assertEqual(
            str(error), "No valid host was found. There are not enough "
            "hosts available. Filter RamFilter returned 0 of 1 host(s).")


class CacheTests(SchedulerTestCase):
    def test_fresh_cache_does_not_read_the_db(self):
        self.add_host("a")
        self.chosen()
        self.assertEqual(self.manager.host_manager.refreshes, 1)
        self.add_host("b", memory_mb=16384)
        self.assertEqual(self.chosen(), ["a"])
        self.assertEqual(self.manager.host_manager.refreshes, 1)
        self.clock.advance(
            self.conf.scheduler.host_state_refresh_interval)
        self.assertEqual(self.chosen(), ["b"])
        self.assertEqual(self.manager.host_manager.refreshes, 2)

    def test_refresh_when_asked(self):
        self.add_host("a")
        self.chosen()
        self.update_service("a", disabled=True)
        self.assertEqual(self.chosen(), ["a"])
        self.manager.refresh_host_states(self.context)
        self.no_valid_host()
        self.assertEqual(self.manager.host_manager.refreshes, 2)

    def test_stale_cache_read_again_before_no_valid_host(self):
        # The cache is served up to twice the refresh interval old (while
        # a read goes on in the background); a live host whose heartbeat
        # in it is older than service_down_time is not refused for that:
        # the scheduler waits for the new read before NoValidHost.
        conf = self.conf.with_overrides(
            DEFAULT={"service_down_time": 5},
            scheduler={"host_state_refresh_interval": 5.0})
        reads = []

        class SlowDB(DBStub):
            def read(self, thd, *args, **kwargs):
                d = defer.Deferred()
                reads.append((d, thd, args, kwargs))
                return d

        def finish_reads():
            while reads:
                d, thd, args, kwargs = reads.pop(0)
                d.callback(self.run_db(thd, *args, **kwargs))

        manager = SchedulerManager(conf, SlowDB(), self.clock)

        def select():
            return defer.ensureDeferred(manager.select_destinations(
                self.context, request_spec(), ["i1"]))
        self.add_host("a")
        first = select()
        finish_reads()
        self.assertEqual(self.successResultOf(first)[0][0]["host"], "a")
        self.clock.advance(7)
        self.update_service("a", last_seen_up=self.now())
        second = select()
        self.assertNoResult(second)
        finish_reads()
        self.assertEqual(self.successResultOf(second)[0][0]["host"], "a")
        # A host that stopped reporting is refused after the new read too.
        self.clock.advance(7)
        third = select()
        finish_reads()
        self.failureResultOf(third, exception.NoValidHost)

    def test_zero_interval_reads_every_time(self):
        conf = self.conf.with_overrides(
            scheduler={"host_state_refresh_interval": 0.0})
        manager = self.make_manager(conf)
        self.add_host("a")
        for _ in range(3):
            self.select(manager=manager)
        self.assertEqual(manager.host_manager.refreshes, 3)

    def test_deleted_node_disappears(self):
        self.add_host("a")
        self.add_host("b", memory_mb=8192)
        self.assertEqual(self.chosen(), ["b"])
        self.update_node("b", deleted=1)
        self.manager.refresh_host_states(self.context)
        self.assertEqual(self.chosen(), ["a"])

    def test_concurrent_requests_share_one_read(self):
        self.add_host("a")
        self.add_host("b")
        reads = []

        class SlowDB(DBStub):
            def __init__(self, db):
                super().__init__()
                self.db = db

            def read(self, thd, *args, **kwargs):
                d = defer.Deferred()
                reads.append((d, thd, args, kwargs))
                return d

        manager = SchedulerManager(self.conf, SlowDB(self.db), self.clock)
        spec = request_spec()
        first = defer.ensureDeferred(manager.select_destinations(
            self.context, spec, ["i1"]))
        second = defer.ensureDeferred(manager.select_destinations(
            self.context, spec, ["i2"]))
        self.assertEqual(len(reads), 1)
        self.assertNoResult(first)
        d, thd, args, kwargs = reads[0]
        self.assertIs(thd, services_db.compute_hosts)
        d.callback(self.run_db(thd, *args, **kwargs))
        hosts = {self.successResultOf(first)[0][0]["host"],
                 self.successResultOf(second)[0][0]["host"]}
        self.assertEqual(hosts, {"a", "b"})

    def test_stale_cache_is_refreshed_in_the_background(self):
        self.add_host("a")
        reads = []

        class SlowDB(DBStub):
            def read(self_, thd, *args, **kwargs):
                d = defer.Deferred()
                reads.append((d, thd, args, kwargs))
                return d

        manager = SchedulerManager(self.conf, SlowDB(), self.clock)
        interval = self.conf.scheduler.host_state_refresh_interval

        def request():
            return defer.ensureDeferred(manager.select_destinations(
                self.context, request_spec(), [f"i{len(reads)}"]))

        def answer(index):
            d, thd, args, kwargs = reads[index]
            d.callback(self.run_db(thd, *args, **kwargs))

        first = request()
        self.assertNoResult(first)  # nothing cached: it waits
        answer(0)
        self.assertEqual(self.successResultOf(first)[0][0]["host"], "a")
        self.add_host("b", memory_mb=16384)
        # Stale: answered at once from the cache, a read starts.
        self.clock.advance(interval)
        self.assertEqual(self.successResultOf(request())[0][0]["host"],
                         "a")
        self.assertEqual(len(reads), 2)
        # Another request meanwhile shares that read.
        self.assertEqual(self.successResultOf(request())[0][0]["host"],
                         "a")
        self.assertEqual(len(reads), 2)
        answer(1)
        self.assertEqual(self.successResultOf(request())[0][0]["host"],
                         "b")
        # Much too old: the request waits for the database.
        self.clock.advance(2 * interval)
        late = request()
        self.assertNoResult(late)
        self.assertEqual(len(reads), 3)
        answer(2)
        self.successResultOf(late)

    def test_invalidated_during_a_read_reads_again(self):
        self.add_host("a")
        reads = []

        class SlowDB(DBStub):
            def read(self_, thd, *args, **kwargs):
                d = defer.Deferred()
                reads.append((d, thd, args, kwargs))
                return d

        manager = SchedulerManager(self.conf, SlowDB(), self.clock)
        d = defer.ensureDeferred(manager.select_destinations(
            self.context, request_spec(), ["i1"]))
        # The host is disabled (and the schedulers told) while the read
        # is under way: its result may predate the change.
        first, thd, args, kwargs = reads[0]
        before = self.run_db(thd, *args, **kwargs)
        self.update_service("a", disabled=True)
        manager.refresh_host_states(self.context)
        first.callback(before)
        self.assertNoResult(d)
        self.assertEqual(len(reads), 2)
        second, thd, args, kwargs = reads[1]
        second.callback(self.run_db(thd, *args, **kwargs))
        self.failureResultOf(d, exception.NoValidHost)

    def test_failed_background_read_keeps_the_cache(self):
        self.add_host("a")
        fail = []

        class FlakyDB(DBStub):
            def read(self_, thd, *args, **kwargs):
                if fail:
                    return defer.fail(RuntimeError("db gone"))
                return self.db.read(thd, *args, **kwargs)

        manager = SchedulerManager(self.conf, FlakyDB(), self.clock)
        self.select(manager=manager)
        fail.append(True)
        self.clock.advance(self.conf.scheduler.host_state_refresh_interval)
        self.assertEqual(self.select(manager=manager)[0][0]["host"], "a")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failed_read_fails_the_waiters_then_retries(self):
        self.add_host("a")
        reads = []

        class FlakyDB(DBStub):
            def read(self_, thd, *args, **kwargs):
                reads.append(thd)
                if len(reads) == 1:
                    return defer.fail(RuntimeError("db gone"))
                return self.db.read(thd, *args, **kwargs)

        manager = SchedulerManager(self.conf, FlakyDB(), self.clock)
        d = defer.ensureDeferred(manager.select_destinations(
            self.context, request_spec(), ["i1"]))
        self.failureResultOf(d, RuntimeError)
        self.assertEqual(self.select(manager=manager)[0][0]["host"], "a")


class QueryTests(SchedulerTestCase):
    def test_compute_hosts_joins_service_and_zone(self):
        self.add_host("a")
        self.add_host("orphan", service=False)
        self.add_aggregate("agg1", ["a"], availability_zone="z1")
        self.add_aggregate("agg2", ["a"], availability_zone="z2")
        data = self.run_db(services_db.compute_hosts)
        rows = {r["host"]: r for r in data["nodes"]}
        self.assertIsNotNone(rows["a"]["service_id"])
        self.assertIsNone(rows["orphan"]["service_id"])
        self.assertEqual(data["zones"], {"a": ["z1", "z2"]})

    def test_epoch(self):
        self.assertEqual(host_state.epoch(datetime.datetime(1970, 1, 2)),
                         86400.0)
        self.assertIsNone(host_state.epoch(None))


class RebuildCheckTests(SchedulerTestCase):
    """Nova's rebuild check: the server's own host, forced; only the
    filters that look at the image; nothing claimed."""

    def rebuild_spec(self, host, **image_props):
        return request_spec(
            flavor=flavor(memory_mb=4096),
            image={"id": "img-2", "properties": image_props},
            requested_destination={"host": host, "node": host},
            scheduler_hints={"_nova_check_type": ["rebuild"]})

    def test_a_full_host_still_fits_its_own_server(self):
        # the server's memory is already used on "a": no room for a new
        # claim, but a rebuild claims nothing
        self.add_host("a", memory_mb=4096, memory_mb_used=4096)
        self.add_host("b", memory_mb=8192)
        spec = self.rebuild_spec("a")
        self.assertEqual(self.chosen(spec), ["a"])
        self.assertEqual(self.chosen(spec), ["a"])  # nothing was claimed

    def test_an_image_the_host_cannot_run_is_refused(self):
        self.add_host("a", cpu_info={"arch": "x86_64"})
        error = self.no_valid_host(self.rebuild_spec(
            "a", hw_architecture="aarch64"))
        self.assertIn("ImagePropertiesFilter", str(error))
        self.assertEqual(self.chosen(self.rebuild_spec(
            "a", hw_architecture="x86_64")), ["a"])
