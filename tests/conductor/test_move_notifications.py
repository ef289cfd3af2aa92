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
