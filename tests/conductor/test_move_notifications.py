"""The notifications of moves, from the agents that do each step (the
whole move stack on the in-process bus, one in-process sink for every
agent)."""

from __future__ import annotations

from tests.conductor.move_stack import MoveStackTestCase
from twisted_compute.notifications import MemorySink, Notifier


class MoveNotificationTests(MoveStackTestCase):
    def setUp(self):
        super().setUp()
        self.sink = MemorySink()
        notifier = Notifier(self.clock, self.sink, drivers=["messagingv2"])
        for host, agent in self.agents.items():
            agent.notifier = notifier.prepare(f"nova-compute:{host}")

    def seen(self) -> list[tuple[str, str]]:
        """(event type, publishing host) of every notification but
        instance.update."""
        return [(m["event_type"], m["publisher_id"].split(":", 1)[1])
                for m in self.sink.messages()
                if m["event_type"] != "instance.update"]

    def test_resize_then_confirm(self):
        uuid = self.boot()
        self.call(self.api.resize(self.ctx, uuid, "big"))
        dest = self.get(uuid).host
        self.call(self.api.confirm_resize(self.ctx, uuid))
        self.assertEqual(self.seen(), [
            ("instance.resize_prep.start", dest),
            ("instance.resize_prep.end", dest),
            ("instance.resize.start", "h1"),
            ("instance.resize.end", "h1"),
            ("instance.resize_finish.start", dest),
            ("instance.resize_finish.end", dest),
            ("instance.resize_confirm.start", "h1"),
            ("instance.resize_confirm.end", "h1")])
        [prep] = [m for m in self.sink.messages()
                  if m["event_type"] == "instance.resize_prep.start"]
        payload = prep["payload"]
        self.assertEqual(payload["nova_object.name"],
                         "InstanceActionResizePrepPayload")
        self.assertEqual(payload["nova_object.data"]["new_flavor"][
            "nova_object.data"]["flavorid"], "big")

    def test_resize_then_revert(self):
        uuid = self.boot()
        self.call(self.api.resize(self.ctx, uuid, "big"))
        dest = self.get(uuid).host
        self.sink.clear()
        self.call(self.api.revert_resize(self.ctx, uuid))
        # As Nova: the destination starts the revert, the source ends it.
        self.assertEqual(self.seen(), [
            ("instance.resize_revert.start", dest),
            ("instance.resize_revert.end", "h1")])

    def test_live_migration(self):
        uuid = self.boot()
        self.call(self.api.live_migrate(self.ctx, uuid, "h3", "auto",
                                        False))
        self.settle(seconds=10)
        self.assertEqual(self.get(uuid).host, "h3")
        self.assertEqual(self.seen(), [
            ("instance.live_migration_pre.start", "h3"),
            ("instance.live_migration_pre.end", "h3"),
            ("instance.live_migration_post_dest.start", "h3"),
            ("instance.live_migration_post_dest.end", "h3"),
            ("instance.live_migration_post.start", "h1"),
            ("instance.live_migration_post.end", "h1")])

    def test_live_migration_abort_and_force_complete(self):
        for driver in self.drivers.values():
            driver.move_step_delays = {"live_migration": 20}
        uuid = self.boot()
        self.call(self.api.live_migrate(self.ctx, uuid, "h3", False, False))
        self.settle(seconds=5)
        self.sink.clear()
        self.call(self.api.live_migration_abort(
            self.ctx, self.get(uuid), self.migration(uuid)))
        seen = self.seen()
        self.assertIn(("instance.live_migration_abort.start", "h1"), seen)
        self.assertIn(("instance.live_migration_abort.end", "h1"), seen)
        self.assertEqual(self.get(uuid).host, "h1")

        self.call(self.api.live_migrate(self.ctx, uuid, "h3", False, False))
        self.sink.clear()
        self.call(self.api.live_migration_force_complete(
            self.ctx, self.get(uuid), self.migration(uuid)))
        seen = self.seen()
        self.assertIn(("instance.live_migration_force_complete.start", "h1"),
                      seen)
        self.assertIn(("instance.live_migration_force_complete.end", "h1"),
                      seen)
        self.assertEqual(self.get(uuid).host, "h3")

    def test_evacuate_is_one_event_on_the_destination(self):
        from twisted_compute.db import models as m
        uuid = self.boot()
        self.heartbeat()
        self.run_db(lambda conn: conn.execute(m.services.update().where(
            m.services.c.host == "h1").values(forced_down=True)))
        self.sink.clear()
        d = self.defer(self.api.evacuate(self.ctx, uuid, None, "pw"))
        self.settle()
        self.successResultOf(d)
        dest = self.get(uuid).host
        self.assertNotEqual(dest, "h1")
        self.assertIn(("instance.evacuate", dest), self.seen())


class ConductorStateNotificationTests(MoveStackTestCase):
    """The conductor's own writes of a move's states send
    ``instance.update`` as the agents' do (publisher nova-conductor)."""

    def setUp(self):
        super().setUp()
        self.sink = MemorySink()
        notifier = Notifier(self.clock, self.sink, drivers=["messagingv2"])
        self.conductor.notifier = notifier.prepare("nova-conductor:c1")

    def updates(self) -> list[tuple[str, str | None, str, str | None]]:
        result = []
        for message in self.sink.messages():
            if message["event_type"] != "instance.update":
                continue
            self.assertEqual(message["publisher_id"], "nova-conductor:c1")
            state = message["payload"]["nova_object.data"]["state_update"][
                "nova_object.data"]
            result.append((state["old_state"], state["old_task_state"],
                           state["state"], state["new_task_state"]))
        return result

    def test_resize_task_states(self):
        uuid = self.boot()
        self.call(self.api.resize(self.ctx, uuid, "big"))
        self.assertEqual(self.get(uuid).vm_state, "resized")
        self.assertEqual(self.updates(), [
            ("active", "resize_prep", "active", "resize_migrating"),
            ("active", "resize_migrating", "active", "resize_migrated"),
            ("active", "resize_migrated", "active", "resize_finish"),
            ("active", "resize_finish", "resized", None)])

    def test_no_destination_clears_the_task(self):
        uuid = self.boot()
        self.call(self.api.live_migrate(self.ctx, uuid, "nowhere", False,
                                        False))
        self.assertEqual(self.updates(),
                         [("active", "migrating", "active", None)])
