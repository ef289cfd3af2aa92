"""The conductor's rebuild: the scheduler's rebuild check of a new image
against the server's host, then the cast to its agent; a host that no
longer fits puts the server in ERROR with a fault, its old image back."""

from __future__ import annotations

from twisted.internet import defer

from tests.api.infra_rows import insert_instance
from tests.base import DBTestCase, make_conf
from tests.conductor import test_manager as base
from twisted_compute import exception
from twisted_compute.conductor.manager import ConductorManager
from twisted_compute.context import RequestContext
from twisted_compute.db import actions as actions_db
from twisted_compute.db import instances as instances_db
from twisted_compute.db import models as m


class FakeAgent:
    def __init__(self):
        self.rebuilds = []

    def rebuild_instance(self, context, instance, **kwargs):
        self.rebuilds.append((instance, kwargs))
        return defer.succeed(None)


class RebuildTests(DBTestCase):
    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)
        self.ctx = RequestContext("u", "p", ("member",),
                                  request_id="req-build")

    def rebuilding(self):
        def thd(conn):
            row = insert_instance(conn, host="hv1", node="hv1")
            conn.execute(m.instances.update().where(
                m.instances.c.uuid == row["uuid"]).values(
                task_state="rebuilding", image_ref="img-2",
                request_spec={"flavor": {"memory_mb": 512},
                              "scheduler_hints": {"a": "b"}}))
            actions_db.record_action(conn, row["uuid"], "rebuild",
                                     request_id="req-build", user_id="u",
                                     project_id="p")
            return row["uuid"]
        return self.run_db(instances_db.get, self.run_db(thd))

    def rebuild(self, answer, image_id="img-2"):
        instance = self.rebuilding()
        self.scheduler = base.FakeScheduler(answer)
        self.agent = FakeAgent()
        manager = ConductorManager(self.conf, self.db, self.scheduler,
                                   self.agent, self.reactor, host="cond1")
        self.successResultOf(defer.ensureDeferred(manager.rebuild_instance(
            self.ctx.to_dict(), instance.to_dict(), orig_image_ref="img-1",
            image={"id": image_id, "properties": {}},
            admin_password="pw")))
        return instance

    def test_a_new_image_is_checked_on_the_host_then_rebuilt(self):
        instance = self.rebuild(lambda uuids: [[{"host": "hv1"}]])
        [(spec, uuids)] = self.scheduler.calls
        self.assertEqual(uuids, [instance.uuid])
        self.assertEqual(spec.requested_destination,
                         {"host": "hv1", "node": "hv1"})
        self.assertEqual(spec.scheduler_hints["_nova_check_type"],
                         ["rebuild"])
        self.assertEqual(spec.scheduler_hints["a"], "b")
        self.assertEqual(spec.image["id"], "img-2")
        [(sent, kwargs)] = self.agent.rebuilds
        self.assertEqual(sent.uuid, instance.uuid)
        self.assertEqual(kwargs["admin_password"], "pw")
        action = self.run_db(actions_db.get_action, instance.uuid,
                             "req-build")
        self.assertEqual([(e.event, e.result) for e in action.events],
                         [("conductor_rebuild_instance", "Success")])

    def test_the_same_image_is_not_checked(self):
        self.rebuild(lambda uuids: [], image_id="img-1")
        self.assertEqual(self.scheduler.calls, [])
        self.assertEqual(len(self.agent.rebuilds), 1)

    def test_a_host_that_no_longer_fits_is_an_error_with_a_fault(self):
        instance = self.rebuild(exception.NoValidHost(
            reason="Filter ImagePropertiesFilter returned 0 of 1 host(s)."))
        self.assertEqual(self.agent.rebuilds, [])
        stored = self.run_db(instances_db.get, instance.uuid)
        self.assertEqual((stored.vm_state, stored.task_state,
                          stored.image_ref), ("error", None, "img-1"))
        self.assertIn("no longer fits", stored.fault.message)
        self.assertIn("ImagePropertiesFilter", stored.fault.message)
        action = self.run_db(actions_db.get_action, instance.uuid,
                             "req-build")
        self.assertEqual([(e.event, e.result) for e in action.events],
                         [("conductor_rebuild_instance", "Error")])


class LifecycleTimeoutTests(DBTestCase):
    def setUp(self):
        super().setUp()
        self.conf = make_conf(self.state_path)
        self.manager = ConductorManager(self.conf, self.db, None, None,
                                        self.reactor, host="cond1")

    def stuck(self, task_state, age):
        import datetime

        def thd(conn):
            row = insert_instance(conn, host="hv1")
            conn.execute(m.instances.update().where(
                m.instances.c.uuid == row["uuid"]).values(
                task_state=task_state,
                updated_at=m.utcnow() - datetime.timedelta(seconds=age)))
            return row["uuid"]
        return self.run_db(thd)

    def test_lost_lifecycle_tasks_are_failed_with_a_fault(self):
        self.reactor.advance(
            __import__("time").time())  # the clock is the wall clock
        limit = 2 * self.conf.instance_action_timeout
        rebuild = self.stuck("rebuilding", limit + 60)
        password = self.stuck("updating_password", limit + 60)
        young = self.stuck("rescuing", 10)
        failed = self.successResultOf(defer.ensureDeferred(
            self.manager.check_lifecycle_timeouts()))
        self.assertEqual(sorted(failed), sorted([rebuild, password]))
        one = self.run_db(instances_db.get, rebuild)
        self.assertEqual((one.vm_state, one.task_state), ("error", None))
        self.assertIn("did not finish", one.fault.message)
        two = self.run_db(instances_db.get, password)
        self.assertEqual((two.vm_state, two.task_state), ("active", None))
        three = self.run_db(instances_db.get, young)
        self.assertEqual(three.task_state, "rescuing")

    def test_lost_lifecycle_tasks_send_instance_update(self):
        from twisted_compute.notifications import MemorySink, Notifier
        sink = MemorySink()
        self.manager.notifier = Notifier(
            self.reactor, sink, drivers=["messagingv2"]).prepare(
            "nova-conductor:cond1")
        self.reactor.advance(__import__("time").time())
        limit = 2 * self.conf.instance_action_timeout
        rebuild = self.stuck("rebuilding", limit + 60)
        self.successResultOf(defer.ensureDeferred(
            self.manager.check_lifecycle_timeouts()))
        [message] = [m for m in sink.messages()
                     if m["event_type"] == "instance.update"]
        data = message["payload"]["nova_object.data"]
        self.assertEqual(data["uuid"], rebuild)
        state = data["state_update"]["nova_object.data"]
        self.assertEqual((state["old_state"], state["old_task_state"],
                          state["state"], state["new_task_state"]),
                         ("active", "rebuilding", "error", None))
