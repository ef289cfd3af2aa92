"""Notifications through the API and an agent together: the API's own
(``instance.update`` when it sets a task, ``service.update`` from
os-services, the delete of a server no agent holds) and the agent's
snapshot and shelving notifications, in one in-process sink."""

from __future__ import annotations

from tests.api.test_server_snapshots import HOST, AgentTestCase
from twisted_compute.notifications import MemorySink, Notifier


class NotificationTestCase(AgentTestCase):
    def setUp(self):
        super().setUp()
        self.sink = MemorySink()
        notifier = Notifier(self.clock, self.sink, drivers=["messagingv2"])
        self.services.notifier = notifier.prepare("nova-api:api1")
        self.services.compute_api.notifier = self.services.notifier
        self.agent.notifier = notifier.prepare(f"nova-compute:{HOST}")

    def seen(self, updates: bool = True) -> list[tuple[str, str]]:
        return [(m["event_type"], m["publisher_id"])
                for m in self.sink.messages()
                if updates or m["event_type"] != "instance.update"]

    def data(self, event_type: str) -> dict:
        return [m for m in self.sink.messages()
                if m["event_type"] == event_type][-1]["payload"][
            "nova_object.data"]


class ServerNotificationTests(NotificationTestCase):
    def test_stop_the_api_sets_the_task_the_agent_does_the_rest(self):
        server_id = self.running_server()
        self.assertEqual(self.action(server_id, {"os-stop": None}).code, 202)
        api, agent = "nova-api:api1", f"nova-compute:{HOST}"
        self.assertEqual(self.seen(), [
            ("instance.update", api),
            ("instance.power_off.start", agent),
            ("instance.update", agent),
            ("instance.power_off.end", agent)])
        first = self.sink.messages()[0]["payload"]["nova_object.data"]
        self.assertEqual(first["state_update"]["nova_object.data"], {
            "old_state": "active", "state": "active",
            "old_task_state": None, "new_task_state": "powering-off"})
        self.assertEqual(first["uuid"], server_id)

    def test_snapshot(self):
        server_id = self.running_server()
        response = self.action(server_id, {"createImage": {"name": "s1"}})
        self.assertEqual(response.code, 202)
        self.assertEqual(self.seen(updates=False), [
            ("instance.snapshot.start", f"nova-compute:{HOST}"),
            ("instance.snapshot.end", f"nova-compute:{HOST}")])
        # the API set the task: its instance.update comes first
        first = self.sink.messages()[0]
        self.assertEqual((first["event_type"], first["publisher_id"]),
                         ("instance.update", "nova-api:api1"))
        self.assertEqual(first["payload"]["nova_object.data"][
            "state_update"]["nova_object.data"]["new_task_state"],
            "image_snapshot")
        end = self.data("instance.snapshot.end")
        self.assertEqual(end["uuid"], server_id)
        code, image = self.image(end["snapshot_image_id"])
        self.assertEqual((code, image["name"]), (200, "s1"))

    def test_shelve_offload_and_unshelve(self):
        server_id = self.running_server()
        self.action(server_id, {"shelve": None})
        self.action(server_id, {"unshelve": None})
        self.assertEqual([t for t, _ in self.seen(updates=False)], [
            "instance.shelve.start", "instance.shelve.end",
            "instance.shelve_offload.start", "instance.shelve_offload.end",
            "instance.unshelve.start", "instance.unshelve.end"])
        self.assertEqual(self.data("instance.shelve_offload.end")["state"],
                         "shelved_offloaded")
        self.assertEqual(self.data("instance.unshelve.end")["state"],
                         "active")

    def test_reset_state_is_an_update_from_the_api(self):
        server_id = self.running_server()
        response = self.action(server_id, {"os-resetState": {
            "state": "error"}}, token="admin:admin")
        self.assertEqual(response.code, 202, response)
        self.assertEqual(self.seen(), [("instance.update", "nova-api:api1")])
        self.assertEqual(self.data("instance.update")["state_update"][
            "nova_object.data"]["state"], "error")

    def test_a_change_without_a_state_change_is_not_an_update(self):
        server_id = self.running_server()
        self.assertEqual(self.action(server_id, {"lock": None}).code, 202)
        self.assertEqual(self.seen(), [])

    def test_a_server_no_agent_holds_is_deleted_by_the_api(self):
        server_id = self.create_server()
        response = self.delete(f"/v2.1/servers/{server_id}",
                               token="user:project")
        self.assertEqual(response.code, 204)
        self.assertEqual(self.seen(), [
            ("instance.delete.start", "nova-api:api1"),
            ("instance.delete.end", "nova-api:api1")])
        self.assertEqual(self.data("instance.delete.end")["state"],
                         "deleted")


class ServiceNotificationTests(NotificationTestCase):
    def test_disable_enable_and_force_down(self):
        uuid = "5e1c0000-0000-4000-8000-000000000001"
        for body in ({"status": "disabled", "disabled_reason": "maint"},
                     {"status": "enabled"}, {"forced_down": True}):
            response = self.put(f"/v2.1/os-services/{uuid}", body,
                                token="admin:admin", version="2.53")
            self.assertEqual(response.code, 200, response)
        messages = self.sink.messages()
        self.assertEqual([(m["event_type"], m["publisher_id"])
                          for m in messages],
                         [("service.update", "nova-api:api1")] * 3)
        states = [m["payload"]["nova_object.data"] for m in messages]
        self.assertEqual(messages[0]["payload"]["nova_object.name"],
                         "ServiceStatusPayload")
        self.assertEqual(
            [(s["disabled"], s["disabled_reason"], s["forced_down"])
             for s in states],
            [(True, "maint", False), (False, None, False),
             (False, None, True)])
        self.assertEqual((states[0]["host"], states[0]["binary"],
                          states[0]["uuid"]),
                         (HOST, "nova-compute", uuid))

    def test_the_old_actions_notify_too(self):
        response = self.put("/v2.1/os-services/disable",
                            {"host": HOST, "binary": "nova-compute"},
                            token="admin:admin")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(self.data("service.update")["disabled"], True)
