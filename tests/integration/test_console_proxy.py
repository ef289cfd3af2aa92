"""The console proxy as its own process (``twistd
compute-console-proxy``, as in a distributed deployment), on the
database of a ``compute-all`` on the fake driver: the URL
``openstack console url show --serial`` gives leads through it to the
fake guest's serial console, and noVNC's page is served there."""

from __future__ import annotations

import http.client
import os
import time

from tests.integration.harness import TwistdTestCase
from tests.integration.test_openstack_cli import (
    OpenStackCLIMixin, clouds_yaml)


class SeparateProxyTests(OpenStackCLIMixin, TwistdTestCase):
    cli_timeout = 60.0

    def setUp(self):
        super().setUp()
        self.all = self.start_twistd(
            role="compute-all", apis=("osapi_compute", "image"),
            options={"serial_console": {"enabled": True},
                     "DEFAULT": {"report_interval": 1}})
        self.proc = self.all
        self.clouds = os.path.join(self.all.directory, "clouds.yaml")
        with open(self.clouds, "w", encoding="utf-8") as handle:
            handle.write(clouds_yaml(self.all))
        self.proxy = self.start_twistd(
            role="compute-console-proxy", apis=(),
            database=self.all.db_url, ready_pattern="starting on",
            options={"serial_console": {"enabled": True}})

    def test_serial_and_novnc_page_through_the_separate_proxy(self):
        import websocket
        server = self.openstack(
            "server", "create", "--flavor", "m1.tiny", "--image",
            "cirros-like-tiny", "--nic", "none", "--wait", "console-it")
        self.assertEqual(server["status"], "ACTIVE")
        url = self.openstack("console", "url", "show", "--serial",
                             server["id"])["url"]
        # The URL names compute-all's own proxy; the same token works on
        # the other proxy process (the tokens are in the database).
        own = f"ws://127.0.0.1:{self.all.ports['serialproxy']}/"
        self.assertTrue(url.startswith(own), url)
        other = url.replace(
            own, f"ws://127.0.0.1:{self.proxy.ports['serialproxy']}/")
        ws = websocket.create_connection(other, timeout=15)
        try:
            banner = ws.recv()
            self.assertIn(f"fake serial console of {server['id']}".encode(),
                          banner)
            ws.send_binary(b"ping\n")
            echoed = b""
            deadline = time.monotonic() + 10
            while b"ping\n" not in echoed and time.monotonic() < deadline:
                echoed += ws.recv()
            self.assertIn(b"ping\n", echoed)
        finally:
            ws.close()
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.proxy.ports["novncproxy"], timeout=10)
        conn.request("GET", "/vnc_auto.html")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        if os.path.isdir("/usr/share/novnc"):
            self.assertEqual(response.status, 200)
            self.assertIn(b"noVNC", body)
        # after the delete, the token is refused
        self.openstack("server", "delete", "--wait", server["id"],
                       parse=False)
        with self.assertRaises(websocket.WebSocketBadStatusException):
            websocket.create_connection(other, timeout=10)
