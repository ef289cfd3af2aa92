"""The conductor: scheduling, casting builds, reschedules, the build
timeout and the agents' DB proxy, on a real SQLite database."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from twisted.internet import defer

from tests.api.infra_rows import insert_instance
from tests.base import DBTestCase, make_conf, on_backends
from twisted_compute import exception
from twisted_compute.conductor.manager import ConductorManager
from twisted_compute.context import RequestContext
from twisted_compute.db import actions as actions_db
from twisted_compute.db import instances as instances_db
from twisted_compute.db import models as m
from twisted_compute.objects.boot_request import BootRequest
from twisted_compute.objects.request_spec import RequestSpec
from twisted_compute.objects.selection import Selection


class FakeScheduler:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def select_destinations(self, context, request_spec, instance_uuids,
                            return_alternates=True):
        self.calls.append((request_spec, list(instance_uuids)))
        if isinstance(self.answer, Exception):
            return defer.fail(self.answer)
        return defer.succeed([Selection.from_hosts(h) for h in
                              self.answer(instance_uuids)])


class FakeCompute:
    def __init__(self, fail_hosts=()):
        self.builds = []
        self.fail_hosts = set(fail_hosts)

    def build_and_run_instance(self, context, instance, host, **kwargs):
        kwargs["instance"] = instance
        if host in self.fail_hosts:
            return defer.fail(exception.MessagingTimeout(method="build"))
        self.builds.append((host, kwargs))
        return defer.succeed(None)


def hosts(*names):
    return [{"host": n, "nodename": n + "-node"} for n in names]


class ConductorTests(DBTestCase):
    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)
        self.ctx = RequestContext("u", "p", ("member",),
                                  request_id="req-build")

    def manager(self, answer, compute=None):
        self.scheduler = FakeScheduler(answer)
        self.compute = compute or FakeCompute()
        return ConductorManager(self.conf, self.db, self.scheduler,
                                self.compute, self.reactor, host="cond1")

    def boot(self, manager, instances, admin_password=None, **spec):
        """``schedule_and_build_instances`` as the API sends it (1.2)."""
        boot = BootRequest(tuple(instances), RequestSpec(**spec),
                           admin_password=admin_password)
        return self.successResultOf(defer.ensureDeferred(
            manager.schedule_and_build_instances(
                self.ctx.to_dict(), boot_request=boot.to_dict())))

    def failed(self, manager, instance, alternates, reason, attempt,
               image=None):
        """``build_failed`` as an agent sends it (1.2)."""
        return self.successResultOf(defer.ensureDeferred(
            manager.build_failed(
                self.ctx.to_dict(), instance=instance.to_dict(),
                alternates=[a.to_dict() for a in alternates],
                reason=reason, attempt=attempt, image=image,
                requested_networks=None)))

    def new_instance(self, **kw):
        def thd(conn):
            row = insert_instance(conn, **kw)
            conn.execute(m.instances.update().where(
                m.instances.c.uuid == row["uuid"]).values(
                vm_state="building", task_state="scheduling"))
            actions_db.record_action(
                conn, row["uuid"], "create", request_id="req-build",
                user_id="u", project_id="p")
            return row["uuid"]
        uuid = self.run_db(thd)
        return self.run_db(instances_db.get, uuid)

    def test_build_goes_to_the_chosen_host_with_alternates(self):
        instance = self.new_instance()
        manager = self.manager(lambda uuids: [hosts("a", "b", "c")
                                              for _ in uuids])
        self.successResultOf(defer.ensureDeferred(
            manager.schedule_and_build_instances(
                self.ctx.to_dict(), [instance.to_dict()],
                {"image": None, "admin_password": "pw"})))
        [(host, kwargs)] = self.compute.builds
        self.assertEqual(host, "a")
        self.assertEqual([h.host for h in kwargs["alternates"]],
                         ["b", "c"])
        self.assertEqual(kwargs["admin_password"], "pw")
        self.assertNotIn("admin_password",
                         self.scheduler.calls[0][0].to_dict())
        stored = self.run_db(instances_db.get, instance.uuid)
        self.assertEqual((stored.host, stored.node), ("a", "a-node"))
        self.assertEqual(stored.vm_state, "building")
        action = self.run_db(actions_db.get_action, instance.uuid,
                             "req-build")
        self.assertIn("conductor_schedule_and_build_instances",
                      [e.event for e in action.events])

    def test_no_valid_host_puts_instance_in_error_with_fault(self):
        instance = self.new_instance()
        manager = self.manager(exception.NoValidHost(reason="all full"))
        self.boot(manager, [instance])
        stored = self.run_db(instances_db.get, instance.uuid)
        self.assertEqual(stored.vm_state, "error")
        self.assertIsNone(stored.task_state)
        self.assertIn("No valid host", stored.fault.message)
        self.assertEqual(self.compute.builds, [])
        action = self.run_db(actions_db.get_action, instance.uuid,
                             "req-build")
        self.assertEqual(
            [(e.event, e.result) for e in action.events],
            [("conductor_schedule_and_build_instances", "Error")])
        self.assertEqual(action.message, "Error")
        # 2.84 shows the failed event's fault message
        self.assertEqual(action.events[0].details, stored.fault.message)

    def test_build_failures_send_instance_update(self):
        """The conductor's ERROR writes (no host; the last alternate
        failed) send ``instance.update`` as an agent's state writes do."""
        from twisted_compute.notifications import MemorySink, Notifier
        sink = MemorySink()
        notifier = Notifier(self.reactor, sink, drivers=["messagingv2"])

        def states():
            found = [m["payload"]["nova_object.data"] for m in
                     sink.messages() if m["event_type"] == "instance.update"]
            sink.clear()
            return [(d["uuid"], d["state_update"]["nova_object.data"][
                "old_task_state"], d["state"]) for d in found]

        instance = self.new_instance()
        manager = self.manager(exception.NoValidHost(reason="all full"))
        manager.notifier = notifier.prepare("nova-conductor:cond1")
        self.boot(manager, [instance])
        self.assertEqual(states(), [(instance.uuid, "scheduling", "error")])

        instance = self.new_instance()
        manager = self.manager(lambda uuids: [hosts("a")])
        manager.notifier = notifier.prepare("nova-conductor:cond1")
        self.boot(manager, [instance])
        built = self.run_db(instances_db.get, instance.uuid)
        self.failed(manager, built, (), "spawn failed", attempt=1)
        self.assertEqual(states(), [(instance.uuid, "scheduling", "error")])

    def test_reschedule_to_alternate_then_error(self):
        instance = self.new_instance()
        manager = self.manager(lambda uuids: [hosts("a", "b")])
        self.boot(manager, [instance])
        host, kwargs = self.compute.builds[-1]
        self.assertEqual(kwargs["attempt"], 1)
        built = self.run_db(instances_db.get, instance.uuid)
        self.failed(manager, built, kwargs["alternates"], "spawn failed",
                    attempt=1)
        self.assertEqual(self.compute.builds[-1][0], "b")
        self.assertEqual(self.compute.builds[-1][1]["attempt"], 2)
        self.assertEqual(self.run_db(instances_db.get, instance.uuid).host,
                         "b")
        again = self.run_db(instances_db.get, instance.uuid)
        self.failed(manager, again, self.compute.builds[-1][1]["alternates"],
                    "spawn failed", attempt=2)
        stored = self.run_db(instances_db.get, instance.uuid)
        self.assertEqual(stored.vm_state, "error")
        self.assertIn("spawn failed", stored.fault.details)

    def test_placed_instance_gets_its_hosts_zone(self):
        # Booted without a zone: once placed, the host's zone (the
        # default zone for a host in no zone aggregate), also on a
        # reschedule to a host of another zone.
        from tests.api.infra_rows import insert_aggregate
        self.run_db(lambda conn: insert_aggregate(
            conn, "agg-b", zone="zone-b", hosts=["b"]))
        instance = self.new_instance()
        self.assertIsNone(instance.availability_zone)
        manager = self.manager(lambda uuids: [hosts("a", "b")])
        self.boot(manager, [instance])
        built = self.run_db(instances_db.get, instance.uuid)
        self.assertEqual(built.availability_zone, "nova")
        self.failed(manager, built, self.compute.builds[-1][1]["alternates"],
                    "spawn failed", attempt=1)
        self.assertEqual(self.run_db(
            instances_db.get, instance.uuid).availability_zone, "zone-b")

    def test_unreachable_host_is_rescheduled(self):
        instance = self.new_instance()
        manager = self.manager(lambda uuids: [hosts("dead", "live")],
                               FakeCompute(fail_hosts={"dead"}))
        self.boot(manager, [instance])
        self.assertEqual([b[0] for b in self.compute.builds], ["live"])

    def test_deleted_while_scheduling_is_not_built(self):
        instance = self.new_instance()
        self.run_db(instances_db.soft_delete, instance.uuid,
                    project_id=None)
        manager = self.manager(lambda uuids: [hosts("a")])
        self.boot(manager, [instance])
        self.assertEqual(self.compute.builds, [])

    def test_redelivered_request_builds_each_instance_once(self):
        # A conductor died after handling part of a request: the message
        # comes again (to this conductor).  An instance an agent already
        # took is left alone, one placed but maybe never handed over goes
        # to the same host again, one never placed is scheduled; the
        # scheduler is asked only for that one.
        taken, placed, unplaced = (self.new_instance() for _ in range(3))
        manager = self.manager(lambda uuids: [hosts("c") for _ in uuids])
        self.run_db(instances_db.guarded_update, taken.uuid,
                    {"host": "a", "task_state": "spawning"})
        self.run_db(instances_db.guarded_update, placed.uuid, {"host": "b"})
        self.boot(manager, [taken, placed, unplaced])
        self.assertEqual([uuids for _, uuids in self.scheduler.calls],
                         [[unplaced.uuid]])
        built = {kw["instance"].uuid: (host, kw["alternates"])
                 for host, kw in self.compute.builds}
        self.assertEqual(built, {placed.uuid: ("b", ()),
                                 unplaced.uuid: ("c", ())})
        self.assertEqual(self.run_db(instances_db.get, taken.uuid).host,
                         "a")
        # The whole request seen a third time: nothing new is scheduled.
        self.boot(manager, [taken, placed, unplaced])
        self.assertEqual(len(self.scheduler.calls), 1)

    def test_build_timeout(self):
        old = self.new_instance()
        fresh = self.new_instance()
        active = self.new_instance()
        self.run_db(instances_db.guarded_update, active.uuid,
                    {"vm_state": "active", "task_state": None})
        long_ago = m.utcnow() - datetime.timedelta(seconds=3600)
        self.run_db(lambda conn: conn.execute(m.instances.update().where(
            m.instances.c.uuid.in_([old.uuid, active.uuid])).values(
            created_at=long_ago)))
        manager = self.manager(lambda uuids: [])
        self.reactor.advance(
            datetime.datetime.now(datetime.timezone.utc).timestamp())
        failed = self.successResultOf(defer.ensureDeferred(
            manager.check_build_timeouts()))
        self.assertEqual(failed, 1)
        stored = self.run_db(instances_db.get, old.uuid)
        self.assertEqual(stored.vm_state, "error")
        self.assertIn("timed out", stored.fault.message)
        self.assertEqual(self.run_db(instances_db.get, fresh.uuid).vm_state,
                         "building")
        self.assertEqual(self.run_db(instances_db.get, active.uuid).vm_state,
                         "active")

    def test_instance_update_guards_task_state(self):
        instance = self.new_instance()
        manager = self.manager(lambda uuids: [])
        updated = self.successResultOf(defer.ensureDeferred(
            manager.instance_update(self.ctx, instance.uuid,
                                    {"task_state": "spawning"},
                                    expected_task_state=["scheduling"])))
        self.assertEqual(updated["task_state"], "spawning")
        failure = self.failureResultOf(defer.ensureDeferred(
            manager.instance_update(self.ctx, instance.uuid,
                                    {"vm_state": "active"},
                                    expected_task_state=["scheduling"])))
        failure.trap(exception.UnexpectedTaskStateError)
        failure = self.failureResultOf(defer.ensureDeferred(
            manager.instance_update(self.ctx, instance.uuid,
                                    {"user_id": "evil"})))
        failure.trap(exception.InvalidInput)

    def test_instance_update_records_events_with_the_update(self):
        instance = self.new_instance()
        self.run_db(instances_db.guarded_update, instance.uuid, {"host": "a"})
        manager = self.manager(lambda uuids: [])
        event = {"request_id": "req-build", "event": "compute_build",
                 "host": "a"}
        self.successResultOf(defer.ensureDeferred(manager.instance_update(
            self.ctx, instance.uuid, {"task_state": "spawning"},
            expected_task_state=["scheduling"], expected_host="a",
            fetch=False, event=event)))
        # Refused (wrong task state): neither update nor event.
        self.failureResultOf(defer.ensureDeferred(manager.instance_update(
            self.ctx, instance.uuid, {"task_state": None},
            expected_task_state=["scheduling"], fetch=False,
            event=dict(event, event="other"))),
            exception.UnexpectedTaskStateError)
        action = self.run_db(actions_db.get_action, instance.uuid,
                             "req-build")
        self.assertEqual([(e.event, e.result, e.finish_time is None)
                          for e in action.events],
                         [("compute_build", None, True)])
        self.assertIsNone(self.successResultOf(defer.ensureDeferred(
            manager.instance_update(
                self.ctx, instance.uuid, {"vm_state": "active",
                                          "task_state": None},
                expected_task_state=["spawning"], fetch=False,
                event=dict(event, result="Success")))))
        action = self.run_db(actions_db.get_action, instance.uuid,
                             "req-build")
        self.assertEqual([(e.event, e.result, e.finish_time is None)
                          for e in action.events],
                         [("compute_build", "Success", False)])
        self.failureResultOf(defer.ensureDeferred(manager.instance_update(
            self.ctx, instance.uuid, {}, event={"event": "x"})),
            exception.InvalidInput)

    def test_instance_update_guards_host(self):
        # A stale build request (the instance went to another host) must
        # not take the instance.
        instance = self.new_instance()
        self.run_db(instances_db.guarded_update, instance.uuid, {"host": "b"})
        manager = self.manager(lambda uuids: [])
        failure = self.failureResultOf(defer.ensureDeferred(
            manager.instance_update(self.ctx, instance.uuid,
                                    {"task_state": "spawning"},
                                    expected_task_state=["scheduling"],
                                    expected_host="a")))
        failure.trap(exception.UnexpectedTaskStateError)
        self.assertIn("on host b", failure.value.format_message())
        self.assertEqual(
            self.run_db(instances_db.get, instance.uuid).task_state,
            "scheduling")
        updated = self.successResultOf(defer.ensureDeferred(
            manager.instance_update(self.ctx, instance.uuid,
                                    {"task_state": "spawning"},
                                    expected_task_state=["scheduling"],
                                    expected_host="b")))
        self.assertEqual(updated["task_state"], "spawning")

    def test_heartbeat_and_node_report(self):
        manager = self.manager(lambda uuids: [])
        first = self.successResultOf(defer.ensureDeferred(
            manager.service_heartbeat(self.ctx, "h1", "nova-compute",
                                      "compute")))
        self.assertFalse(first["disabled"])
        self.successResultOf(defer.ensureDeferred(
            manager.service_heartbeat(self.ctx, "h1", "nova-compute",
                                      "compute")))
        count = self.run_db(lambda conn: conn.execute(sa.select(
            m.services.c.report_count)).scalar_one())
        self.assertEqual(count, 2)
        values = {"host": "h1", "hypervisor_hostname": "h1-node",
                  "hypervisor_type": "fake", "vcpus": 8, "memory_mb": 8192,
                  "local_gb": 100, "vcpus_used": 1}
        node_id = self.successResultOf(defer.ensureDeferred(
            manager.compute_node_update(self.ctx, values)))
        values["vcpus_used"] = 3
        self.assertEqual(self.successResultOf(defer.ensureDeferred(
            manager.compute_node_update(self.ctx, values))), node_id)
        row = self.run_db(lambda conn: conn.execute(sa.select(
            m.compute_nodes)).one())
        self.assertEqual(row.vcpus_used, 3)
        self.assertIsNotNone(row.service_id)

    def test_batched_heartbeats_create_then_count(self):
        """1.4: one call records every host, creating the rows the first
        time and counting each report after."""
        manager = self.manager(lambda uuids: [])
        self.successResultOf(defer.ensureDeferred(manager.service_heartbeat(
            self.ctx, "h0", "nova-compute", "compute")))
        hosts = [f"h{i}" for i in range(5)]
        for _ in range(2):
            self.assertEqual(self.successResultOf(defer.ensureDeferred(
                manager.service_heartbeats(self.ctx, hosts, "nova-compute",
                                           "compute"))), 5)
        rows = self.run_db(lambda conn: conn.execute(sa.select(
            m.services.c.host, m.services.c.report_count,
            m.services.c.last_seen_up)).all())
        counts = {r.host: r.report_count for r in rows}
        self.assertEqual(counts, {"h0": 3, "h1": 2, "h2": 2, "h3": 2,
                                  "h4": 2})
        self.assertTrue(all(r.last_seen_up is not None for r in rows))

    def test_batched_heartbeats_beyond_one_statement(self):
        from twisted_compute.db import services as services_db
        manager = self.manager(lambda uuids: [])
        hosts = [f"host-{i:04}" for i in
                 range(services_db.HEARTBEAT_CHUNK + 7)]
        for _ in range(2):
            self.successResultOf(defer.ensureDeferred(
                manager.service_heartbeats(self.ctx, hosts, "nova-compute",
                                           "compute")))
        counts = self.run_db(lambda conn: conn.execute(sa.select(
            m.services.c.report_count, sa.func.count()).group_by(
            m.services.c.report_count)).all())
        self.assertEqual([tuple(r) for r in counts], [(2, len(hosts))])

    def test_batched_node_reports_and_instances_on_hosts(self):
        manager = self.manager(lambda uuids: [])
        self.successResultOf(defer.ensureDeferred(manager.service_heartbeats(
            self.ctx, ["h1", "h2", "h3"], "nova-compute", "compute")))
        nodes = [{"host": h, "hypervisor_hostname": h + "-node",
                  "hypervisor_type": "fake", "vcpus": 8, "memory_mb": 8192,
                  "local_gb": 100, "vcpus_used": n}
                 for n, h in enumerate(["h1", "h2", "h3"])]
        self.assertEqual(self.successResultOf(defer.ensureDeferred(
            manager.compute_nodes_update(self.ctx, nodes))), 3)
        nodes[2]["vcpus_used"] = 7
        self.successResultOf(defer.ensureDeferred(
            manager.compute_nodes_update(self.ctx, nodes)))
        rows = self.run_db(lambda conn: conn.execute(sa.select(
            m.compute_nodes.c.host, m.compute_nodes.c.vcpus_used,
            m.compute_nodes.c.service_id.isnot(None))).all())
        self.assertEqual(sorted(tuple(r) for r in rows),
                         [("h1", 0, True), ("h2", 1, True),
                          ("h3", 7, True)])
        self.run_db(lambda conn: insert_instance(conn, host="h2"))
        found = self.successResultOf(defer.ensureDeferred(
            manager.instances_on_hosts(self.ctx, ["h1", "h2"])))
        self.assertEqual(sorted(found), ["h1", "h2"])
        self.assertEqual(found["h1"], [])
        self.assertEqual([i["host"] for i in found["h2"]], ["h2"])


on_backends(ConductorTests, "postgresql", namespace=globals())
