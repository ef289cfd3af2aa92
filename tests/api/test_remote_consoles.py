"""Remote consoles: ``POST /servers/{id}/remote-consoles``, the legacy
console actions and ``GET /os-console-auth-tokens/{token}``."""

from __future__ import annotations

from unittest import mock
from urllib.parse import parse_qs, urlparse

import sqlalchemy as sa

from tests.api.test_servers_base import ServersTestCase
from twisted_compute.api.openstack import api_version
from twisted_compute.db import models as m
from twisted_compute.objects.console import ConsoleInfo


class ConsoleRPC:
    """An agent seam answering where each console is."""

    def __init__(self):
        self.calls = []

    def get_console(self, context, instance, console_type):
        self.calls.append((instance.uuid, console_type))
        port = {"novnc": 5901, "serial": 10001}[console_type]
        return ConsoleInfo(console_type=console_type, host="10.0.0.7",
                           port=port)


def token_of(url: str) -> str:
    query = parse_qs(urlparse(url).query)
    if "path" in query:
        query = parse_qs(urlparse(query["path"][0]).query)
    return query["token"][0]


class RemoteConsoleTests(ServersTestCase):
    conf_overrides = {"serial_console": {"enabled": True},
                      "vnc": {"novncproxy_base_url":
                              "http://proxy.example:6080/vnc_auto.html"}}

    def active_server(self, token="user:project"):
        server_id = self.create_server(token=token)
        self.set_state(server_id, vm_state="active", task_state=None,
                       host="compute1", power_state=1)
        return server_id

    def console(self, server_id, protocol, console_type, version="2.6",
                token="user:project"):
        return self.post(f"/v2.1/servers/{server_id}/remote-consoles",
                         {"remote_console": {"protocol": protocol,
                                             "type": console_type}},
                         token=token, version=version)

    def use_consoles(self):
        rpc = ConsoleRPC()
        self.services.compute_api.compute_rpcapi = rpc
        return rpc

    def test_novnc_url_and_token_stored_as_hash(self):
        rpc = self.use_consoles()
        server_id = self.active_server()
        response = self.console(server_id, "vnc", "novnc")
        self.assertEqual(response.code, 200, response)
        body = response.json["remote_console"]
        self.assertEqual((body["protocol"], body["type"]), ("vnc", "novnc"))
        self.assertTrue(body["url"].startswith(
            "http://proxy.example:6080/vnc_auto.html?path=%3Ftoken%3D"),
            body["url"])
        token = token_of(body["url"])
        self.assertEqual(rpc.calls, [(server_id, "novnc")])
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(m.console_auth_tokens)).all()
        self.assertEqual(len(rows), 1)
        self.assertNotIn(token, [str(v) for v in rows[0]])
        self.assertEqual((rows[0].host, rows[0].port, rows[0].instance_uuid,
                          rows[0].console_type),
                         ("10.0.0.7", 5901, server_id, "novnc"))
        self.assertEqual(rows[0].expires, int(self.reactor.seconds()) + 600)
        # the admin sees where the token leads
        shown = self.get(f"/v2.1/os-console-auth-tokens/{token}",
                         version="2.31")
        self.assertEqual(shown.code, 200, shown)
        self.assertEqual(shown.json, {"console": {
            "instance_uuid": server_id, "host": "10.0.0.7", "port": 5901,
            "internal_access_path": None}})

    def test_serial_url(self):
        self.use_consoles()
        server_id = self.active_server()
        body = self.console(server_id, "serial", "serial").json
        url = body["remote_console"]["url"]
        self.assertTrue(url.startswith("ws://127.0.0.1:6083/?token="), url)

    def test_legacy_actions_until_2_5(self):
        self.use_consoles()
        server_id = self.active_server()
        response = self.action(server_id, {"os-getVNCConsole": {
            "type": "novnc"}}, version="2.1")
        self.assertEqual(response.code, 200, response)
        self.assertEqual(list(response.json["console"]), ["type", "url"])
        self.assertEqual(response.json["console"]["type"], "novnc")
        response = self.action(server_id, {"os-getSerialConsole": {
            "type": "serial"}}, version="2.5")
        self.assertEqual(response.json["console"]["type"], "serial")
        self.assertFault(self.action(server_id, {"os-getVNCConsole": {
            "type": "novnc"}}, version="2.6"), 404)
        self.assertFault(self.action(server_id, {"os-getVNCConsole": {
            "type": "serial"}}, version="2.1"), 400)
        self.assertFault(self.action(server_id, {"os-getSPICEConsole": {
            "type": "spice-html5"}}, version="2.1"), 400,
            "Unavailable console type spice-html5")
        # remote-consoles is not there before 2.6
        self.assertFault(self.console(server_id, "vnc", "novnc",
                                      version="2.5"), 404)

    def test_errors(self):
        self.use_consoles()
        server_id = self.create_server()
        # no host yet
        self.assertFault(self.console(server_id, "vnc", "novnc"), 409)
        self.set_state(server_id, vm_state="stopped", task_state=None,
                       host="compute1")
        self.assertFault(self.console(server_id, "vnc", "novnc"), 409,
                         "stopped")
        self.set_state(server_id, vm_state="active", task_state="deleting")
        self.assertFault(self.console(server_id, "vnc", "novnc"), 409,
                         "deleting")
        self.set_state(server_id, task_state=None)
        self.assertFault(self.console(server_id, "vnc", "serial"), 400,
                         "Invalid console type serial")
        self.assertFault(self.console(server_id, "vnc", "bogus"), 400)
        self.assertFault(self.console(server_id, "rdp", "rdp-html5"), 501)
        self.assertFault(self.console(server_id, "vnc", "xvpvnc"), 501)
        self.assertFault(self.console(server_id, "mks", "webmks"), 400)
        self.assertFault(self.console(server_id, "mks", "webmks",
                                      version="2.8"), 501)
        self.assertFault(self.console(server_id, "spice", "spice-html5"),
                         400, "Unavailable console type spice-html5")
        # another project's server is invisible
        self.assertFault(self.console(server_id, "vnc", "novnc",
                                      token="other:other"), 404)

    def test_without_agent_is_501(self):
        server_id = self.active_server()
        self.assertFault(self.console(server_id, "vnc", "novnc"), 501)

    def test_tokens_api(self):
        self.use_consoles()
        server_id = self.active_server()
        url = self.console(server_id, "serial", "serial").json[
            "remote_console"]["url"]
        token = token_of(url)
        path = f"/v2.1/os-console-auth-tokens/{token}"
        self.assertFault(self.get(path, token="user:project",
                                  version="2.31"), 403)
        # before 2.31 only RDP tokens are shown
        self.assertFault(self.get(path, version="2.30"), 401)
        self.assertFault(self.get("/v2.1/os-console-auth-tokens/nope",
                                  version="2.31"), 404)
        self.assertNotIn("tls_port", self.get(path, version="2.31").json[
            "console"])
        # tls_port from 2.99, once the API reaches it
        with mock.patch.object(api_version, "MAX_VERSION",
                               api_version.APIVersion("2.99")):
            shown = self.get(path, version="2.99")
        self.assertEqual(shown.code, 200, shown)
        self.assertIsNone(shown.json["console"]["tls_port"])
        # expired: refused
        self.reactor.advance(601)
        self.assertFault(self.get(path, version="2.31"), 404)

    def test_tokens_go_with_the_server(self):
        self.use_consoles()
        server_id = self.active_server()
        url = self.console(server_id, "vnc", "novnc").json[
            "remote_console"]["url"]
        token = token_of(url)
        # the agent's end of a delete and a local delete both end in the
        # instance's soft delete: tested here through the local one
        self.services.compute_api.compute_rpcapi = None
        self.assertEqual(self.delete(f"/v2.1/servers/{server_id}",
                                     token="user:project").code, 204)
        self.assertFault(self.get(f"/v2.1/os-console-auth-tokens/{token}",
                                  version="2.31"), 404)
        with self.db.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(
                m.console_auth_tokens)).scalar_one()
        self.assertEqual(count, 0)


class DisabledConsoleTests(ServersTestCase):
    conf_overrides = {"vnc": {"enabled": False}}

    def test_disabled_types_are_400(self):
        self.services.compute_api.compute_rpcapi = ConsoleRPC()
        server_id = self.create_server()
        self.set_state(server_id, vm_state="active", task_state=None,
                       host="compute1")
        for protocol, console_type in (("vnc", "novnc"),
                                       ("serial", "serial")):
            response = self.post(
                f"/v2.1/servers/{server_id}/remote-consoles",
                {"remote_console": {"protocol": protocol,
                                    "type": console_type}},
                token="user:project", version="2.6")
            self.assertFault(response, 400,
                             f"Unavailable console type {console_type}")
