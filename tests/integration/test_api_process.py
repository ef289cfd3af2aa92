"""The compute-api process, for real: ``twistd -n compute-api`` on loopback
ports, over sockets (faults, start-up checks, PostgreSQL, TLS)."""

from __future__ import annotations

import http.client
import signal
import ssl
import uuid

from tests.integration.harness import TwistdProcess, TwistdTestCase


def create_flavor(proc: TwistdProcess, name: str | None = None) -> dict:
    """A new public flavor (as admin); returns its body."""
    name = name or "it-" + uuid.uuid4().hex[:8]
    response = proc.post("/v2.1/flavors", {"flavor": {
        "name": name, "ram": 64, "vcpus": 1, "disk": 1}},
        token="admin:admin")
    assert response.code == 200, response
    return response.json["flavor"]


def create_image(proc: TwistdProcess, token: str = "admin:admin") -> str:
    """A small public image through the image API (Glance v2 on the image
    port): create the record, upload the data; returns its id."""
    response = proc.post("/v2/images", {
        "name": "it-" + uuid.uuid4().hex[:8], "disk_format": "raw",
        "container_format": "bare", "visibility": "public"},
        api="image", token=token)
    assert response.code == 201, response
    image_id = response.json["id"]
    response = proc.put(f"/v2/images/{image_id}/file", api="image",
                        token=token, raw=b"\0" * 1024,
                        headers={"Content-Type": "application/octet-stream"})
    assert response.code == 204, response
    return image_id


def create_server(proc: TwistdProcess, token: str, flavor_id: str,
                  image_id: str) -> dict:
    """POST /v2.1/servers (networks auto); returns the 202 body's server."""
    response = proc.post("/v2.1/servers", {"server": {
        "name": "it-" + uuid.uuid4().hex[:8], "flavorRef": flavor_id,
        "imageRef": image_id, "networks": "auto"}},
        token=token, version="2.79")
    assert response.code == 202, response
    return response.json["server"]


class FaultsTests(TwistdTestCase):
    """Fault bodies with the right codes, from one shared process."""

    shared = {"apis": ("osapi_compute", "image")}

    def test_listening_logged(self):
        port = self.proc.ports["osapi_compute"]
        self.proc.wait_for_log(
            rf"osapi_compute listening on 127\.0\.0\.1:{port}\b")
        self.proc.wait_for_log(
            rf"image listening on 127\.0\.0\.1:{self.proc.ports['image']}\b")

    def test_versions_document(self):
        response = self.proc.get("/", token=None)
        self.assertEqual(response.code, 200, response)
        versions = response.json["versions"]
        self.assertEqual([v["id"] for v in versions], ["v2.0", "v2.1"])
        self.assertEqual(versions[1]["version"], "2.104")

    def test_unknown_server_404(self):
        response = self.proc.get(f"/v2.1/servers/{uuid.uuid4()}",
                                 token="u1:p1")
        self.assertFault(response, 404)

    def test_bad_json_400(self):
        response = self.proc.post(
            "/v2.1/flavors", raw=b"{not json",
            headers={"Content-Type": "application/json"})
        self.assertFault(response, 400)

    def test_bad_body_400(self):
        response = self.proc.post("/v2.1/flavors", {"flavor": {
            "name": "x", "ram": "lots", "vcpus": 1, "disk": 1}})
        fault = self.assertFault(response, 400)
        self.assertIn("ram", fault["message"])

    def test_oversize_body_413(self):
        body = b'{"flavor": {"name": "' + b"x" * 114689 + b'"}}'
        response = self.proc.post(
            "/v2.1/flavors", raw=body,
            headers={"Content-Type": "application/json"})
        self.assertFault(response, 413)

    def test_body_at_limit_not_413(self):
        # The limit is inclusive: a body of exactly 114688 bytes passes the
        # size check (and then fails validation: the name is too long).
        head, tail = b'{"flavor": {"name": "', b'"}}'
        body = head + b"x" * (114688 - len(head) - len(tail)) + tail
        self.assertEqual(len(body), 114688)
        response = self.proc.post(
            "/v2.1/flavors", raw=body,
            headers={"Content-Type": "application/json"})
        self.assertFault(response, 400)

    def test_bad_microversion_406(self):
        response = self.proc.get("/v2.1/flavors", version="2.999")
        self.assertFault(response, 406)
        response = self.proc.get("/v2.1/flavors", version="1.1")
        self.assertFault(response, 406)

    def test_no_token_401(self):
        response = self.proc.get("/v2.1/flavors", token=None)
        self.assertFault(response, 401)

    def test_other_projects_server_404(self):
        flavor = create_flavor(self.proc)
        image_id = create_image(self.proc)
        server = create_server(self.proc, "u1:p1", flavor["id"], image_id)
        mine = self.proc.get(f"/v2.1/servers/{server['id']}", token="u1:p1")
        self.assertEqual(mine.code, 200, mine)
        self.assertEqual(mine.json["server"]["id"], server["id"])
        theirs = self.proc.get(f"/v2.1/servers/{server['id']}",
                               token="u2:p2")
        self.assertFault(theirs, 404)

    def test_wrong_state_action_409(self):
        flavor = create_flavor(self.proc)
        image_id = create_image(self.proc)
        server = create_server(self.proc, "u1:p1", flavor["id"], image_id)
        shown = self.proc.get(f"/v2.1/servers/{server['id']}", token="u1:p1")
        self.assertEqual(shown.json["server"]["status"], "BUILD", shown)
        response = self.proc.post(f"/v2.1/servers/{server['id']}/action",
                                  {"os-stop": None}, token="u1:p1")
        self.assertFault(response, 409)


class StartupTests(TwistdTestCase):
    """What the process says when it cannot (fully) start."""

    def test_unknown_api_warned_and_skipped(self):
        proc = self.start_twistd(apis=("osapi_compute", "nosuch_api"))
        proc.wait_for_log(r"Unknown API 'nosuch_api' in enabled_apis")
        response = proc.get("/v2.1/flavors")
        self.assertEqual(response.code, 200, response)

    def test_only_unknown_apis_exit(self):
        proc = self.make_twistd(apis=("nosuch_api", "bogus"))
        code, log = proc.run_to_exit()
        self.assertNotEqual(code, 0, log)
        self.assertIn("no API could be started", log)
        self.assertIn("nosuch_api", log)

    def test_bad_config_value_exit(self):
        proc = self.make_twistd(options={"api": {"max_limit": "many"}})
        code, log = proc.run_to_exit()
        self.assertNotEqual(code, 0, log)
        self.assertIn("[api] max_limit", log)
        self.assertIn(proc.config_file, log)
        self.assertIn("many", log)

    def test_unmigrated_database_exit(self):
        proc = self.make_twistd(database="sqlite-empty")
        code, log = proc.run_to_exit()
        self.assertNotEqual(code, 0, log)
        self.assertIn("compute-manage", log)
        self.assertIn("db sync", log)
        self.assertNotIn("listening on", log)

    def test_port_in_use_skipped(self):
        # Another process holds the image port: that API is reported and
        # skipped; compute still serves.
        import socket
        proc = TwistdProcess(apis=("osapi_compute", "image"))
        self._processes.append(proc)
        self.addCleanup(proc.cleanup)
        proc.prepare()
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", proc.ports["image"]))
        holder.listen(1)
        proc.start(wait=False)
        proc.wait_for_log(r"API image skipped: cannot listen on "
                          rf"127\.0\.0\.1:{proc.ports['image']}")
        proc.wait_for_log(r"osapi_compute listening on")
        response = proc.get("/v2.1/flavors")
        self.assertEqual(response.code, 200, response)

    def test_sigterm_exits_cleanly(self):
        # twistd shuts down cleanly, then ends by the signal it got (so the
        # exit status says SIGTERM).
        proc = self.start_twistd()
        self.assertIn(proc.stop(), (0, -signal.SIGTERM), proc.describe())
        self.assertIn("Server Shut Down", proc.log_text())


class SmokeMixin:
    """Flavors and servers lists against the process's database."""

    def test_smoke(self):
        flavor = create_flavor(self.proc)
        listed = self.proc.get("/v2.1/flavors", token="u1:p1")
        self.assertEqual(listed.code, 200, listed)
        self.assertIn(flavor["id"], [f["id"] for f in listed.json["flavors"]])
        shown = self.proc.get(f"/v2.1/flavors/{flavor['id']}/os-extra_specs",
                              token="admin:admin")
        self.assertIn(shown.code, (200, 404), shown)
        servers = self.proc.get("/v2.1/servers", token="u1:p1")
        self.assertEqual(servers.code, 200, servers)
        self.assertEqual(servers.json, {"servers": []})
        detail = self.proc.get("/v2.1/servers/detail", token="u1:p1")
        self.assertEqual(detail.code, 200, detail)
        self.assertEqual(detail.json["servers"], [])


class SQLiteSmokeTests(SmokeMixin, TwistdTestCase):
    shared = {"apis": ("osapi_compute",)}


class PostgreSQLSmokeTests(SmokeMixin, TwistdTestCase):
    """The same, on a fresh PostgreSQL database (skips when PostgreSQL is
    unreachable unless TWISTED_COMPUTE_DEMAND names postgresql)."""

    shared = {"apis": ("osapi_compute",), "database": "postgresql"}


class TLSTests(TwistdTestCase):
    shared = {"apis": ("osapi_compute",), "ssl_apis": ("osapi_compute",)}

    def test_https_versions_document(self):
        response = self.proc.get("/", token=None)
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["versions"][1]["id"], "v2.1")
        self.assertTrue(
            response.json["versions"][0]["links"][0]["href"].startswith(
                f"https://127.0.0.1:{self.proc.ports['osapi_compute']}/"),
            response.json)

    def test_https_api_call(self):
        response = self.proc.get("/v2.1/flavors")
        self.assertEqual(response.code, 200, response)

    def test_plain_http_refused(self):
        # The certificate is not trusted by default and plain HTTP gets no
        # HTTP answer.
        with self.assertRaises(ssl.SSLError):
            self.proc.get("/", token=None, tls=ssl.create_default_context())
        with self.assertRaises((OSError, http.client.HTTPException)):
            self.proc.get("/", token=None, tls=None, timeout=5)
