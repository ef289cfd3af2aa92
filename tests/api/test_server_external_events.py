"""``POST /os-server-external-events``: Nova's body, per-event codes and
the overall 200/207/404, the events recorded on the instances and cast
to their hosts."""

from __future__ import annotations

from tests.api.test_servers_base import ServersTestCase, random_uuid
from twisted_compute.api.policy import Enforcer

PATH = "/v2.1/os-server-external-events"


class RecordingRPC:
    def __init__(self):
        self.sent = []

    def external_instance_event(self, context, host, events):
        self.sent.append((host, events))


class ExternalEventsTests(ServersTestCase):
    def setUp(self):
        super().setUp()
        self.rpc = RecordingRPC()
        self.services.compute_api.compute_rpcapi = self.rpc
        self.on_h1 = self.create_server(name="a")
        self.on_h2 = self.create_server(name="b")
        self.no_host = self.create_server(name="c")
        self.set_state(self.on_h1, host="h1")
        self.set_state(self.on_h2, host="h2")

    def event(self, server, name="network-vif-plugged", **extra):
        return {"name": name, "server_uuid": server, **extra}

    def test_all_accepted(self):
        response = self.post(PATH, {"events": [
            self.event(self.on_h1, tag="port-1", status="completed"),
            self.event(self.on_h2, name="network-changed")]})
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json, {"events": [
            {"name": "network-vif-plugged", "server_uuid": self.on_h1,
             "tag": "port-1", "status": "completed", "code": 200},
            {"name": "network-changed", "server_uuid": self.on_h2,
             "status": "completed", "code": 200}]})
        self.assertEqual(self.rpc.sent, [
            ("h1", [{"server_uuid": self.on_h1,
                     "name": "network-vif-plugged", "status": "completed",
                     "tag": "port-1"}]),
            ("h2", [{"server_uuid": self.on_h2, "name": "network-changed",
                     "status": "completed", "tag": None}])])
        recorded = self.successResultOf(
            self.db.external_events.list_for(self.on_h1))
        self.assertEqual([(e["name"], e["tag"], e["status"])
                          for e in recorded],
                         [("network-vif-plugged", "port-1", "completed")])

    def test_partial_is_207(self):
        unknown = random_uuid()
        response = self.post(PATH, {"events": [
            self.event(self.on_h1, status="failed"),
            self.event(unknown), self.event(self.no_host)]})
        self.assertEqual(response.code, 207, response)
        codes = [(e["server_uuid"], e["code"], e["status"])
                 for e in response.json["events"]]
        self.assertEqual(codes, [(self.on_h1, 200, "failed"),
                                 (unknown, 404, "failed"),
                                 (self.no_host, 422, "failed")])
        self.assertEqual(len(self.rpc.sent), 1)
        self.assertEqual(self.successResultOf(
            self.db.external_events.list_for(self.no_host)), [])

    def test_none_accepted_is_404(self):
        self.assertFault(self.post(PATH, {"events": [
            self.event(random_uuid()), self.event(self.no_host)]}), 404,
            "No instances found for any event")
        self.assertEqual(self.rpc.sent, [])

    def test_another_projects_server_is_404_per_event(self):
        # with a policy that lets members send events, a member still
        # cannot reach another project's server
        self.services.policy = Enforcer({
            "os_compute_api:os-server-external-events:create": "@"})
        theirs = self.create_server(name="t", token="user:other")
        self.set_state(theirs, host="h1")
        response = self.post(PATH, {"events": [
            self.event(self.on_h1), self.event(theirs)]},
            token="user:project")
        self.assertEqual(response.code, 207, response)
        self.assertEqual([e["code"] for e in response.json["events"]],
                         [200, 404])

    def test_admin_only(self):
        self.assertFault(self.post(PATH, {"events": [
            self.event(self.on_h1)]}, token="user:project"), 403)

    def test_validation_and_versions(self):
        for body in ({}, {"events": []}, {"events": [{"name": "x",
                                                      "server_uuid":
                                                      self.on_h1}]},
                     {"events": [self.event("not-a-uuid")]},
                     {"events": [self.event(self.on_h1, status="done")]},
                     {"events": [self.event(self.on_h1, extra=1)]},
                     {"events": [self.event(self.on_h1, tag="x" * 256)]}):
            self.assertFault(self.post(PATH, body), 400)
        volume = {"events": [self.event(self.on_h1,
                                        name="volume-extended")]}
        self.assertFault(self.post(PATH, volume, version="2.50"), 400,
                         "name")
        self.assertFault(self.post(PATH, volume, version="2.51"), 404)
        volume["events"].append(self.event(self.on_h2))
        response = self.post(PATH, volume, version="2.51")
        self.assertEqual([e["code"] for e in response.json["events"]],
                         [400, 200])
        power = {"events": [self.event(self.on_h1, name="power-update",
                                       tag="POWER_OFF")]}
        self.assertFault(self.post(PATH, power, version="2.75"), 400)
        self.assertEqual(self.post(PATH, power, version="2.76").code, 200)
