"""The ``keystone`` auth strategy against a real Keystone.

One Keystone (:mod:`tests.integration.keystone_fixture`) and one
``twistd -n compute-api`` (``[api] auth_strategy = keystone``, osapi_compute
and image) are shared by the tests of :class:`KeystoneAuthTests`: the API
validates every token with Keystone as the ``[keystone_authtoken]``
service user, and the ``openstack`` CLI authenticates with a password and
finds our endpoints in Keystone's service catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid

from tests.integration.harness import (
    OPENSTACK, TwistdProcess, TwistdTestCase, run_command)
from tests.integration.keystone_fixture import (
    REGION, require_keystone, shared_keystone)

SERVICE_PASSWORD = "nova-secret"
MEMBER_PASSWORD = "alice-secret"
OTHER_PASSWORD = "bob-secret"
CLI_TIMEOUT = 90.0

_STACK: dict[str, object] = {}


def _stack():
    """(keystone, twistd process), made once for the class."""
    if "proc" in _STACK:
        return _STACK["keystone"], _STACK["proc"]
    keystone = shared_keystone()
    keystone.user("nova", SERVICE_PASSWORD, "service", ("admin",))
    keystone.user("alice", MEMBER_PASSWORD, "demo", ("member", "reader"))
    keystone.user("bob", OTHER_PASSWORD, "other", ("member", "reader"))
    proc = TwistdProcess(apis=("osapi_compute", "image"), options={
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": {
            "auth_url": keystone.auth_url,
            "www_authenticate_uri": keystone.auth_url,
            "username": "nova", "password": SERVICE_PASSWORD,
            "project_name": "service",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "token_cache_time": 2,
        }})
    proc.prepare()
    keystone.endpoint("compute", "nova",
                      f"{proc.url('osapi_compute')}/v2.1")
    keystone.endpoint("image", "glance", proc.url("image"))
    try:
        proc.start()
    except BaseException:
        proc.cleanup()
        raise
    _STACK.update(keystone=keystone, proc=proc)
    return keystone, proc


def _stop_stack():
    proc = _STACK.pop("proc", None)
    _STACK.clear()
    if proc is not None:
        proc.cleanup()


class KeystoneAuthTests(TwistdTestCase):

    def setUp(self):
        require_keystone()
        super().setUp()
        self.keystone, self.proc = _stack()
        self._processes.append(self.proc)
        if not self.proc.running():
            self.fail(f"compute-api died\n{self.proc.describe()}")
        cls = type(self)
        ran = _STACK.setdefault("ran", set())
        ran.add(self._testMethodName)
        names = {n for n in dir(cls) if n.startswith("test")}
        if names <= ran:
            self.addCleanup(_stop_stack)

    def token(self, user="alice", password=MEMBER_PASSWORD, project="demo"):
        return self.keystone.password_token(user, password, project)[0]

    def admin_token(self):
        return self.keystone.admin_token()

    # --- the middleware ---------------------------------------------------

    def test_no_token_is_401(self):
        response = self.proc.get("/v2.1/flavors", token=None)
        self.assertFault(response, 401)
        self.assertEqual(response.header("www-authenticate"),
                         f'Keystone uri="{self.keystone.auth_url}"')
        image = self.proc.get("/v2/images", api="image", token=None)
        self.assertFault(image, 401)

    def test_bad_token_is_401(self):
        self.assertFault(self.proc.get("/v2.1/flavors",
                                       token="not-a-token"), 401)
        # A real token, revoked, is refused too (once its cached answer
        # has expired: token_cache_time is 2 seconds here).
        token = self.token()
        self.assertEqual(self.proc.get("/v2.1/flavors", token=token).code,
                         200)
        status, _, body = self.keystone.request(
            "DELETE", "/v3/auth/tokens", token=self.admin_token(),
            headers={"X-Subject-Token": token})
        self.assertEqual(status, 204, body)
        import time
        time.sleep(2.2)
        self.assertFault(self.proc.get("/v2.1/flavors", token=token), 401)

    def test_member_token_is_200(self):
        response = self.proc.get("/v2.1/flavors", token=self.token())
        self.assertEqual(response.code, 200, response)
        self.assertIn("flavors", response.json)
        images = self.proc.get("/v2/images", api="image",
                               token=self.token())
        self.assertEqual(images.code, 200, images)

    def test_admin_only_call_with_member_token_is_403(self):
        body = {"flavor": {"name": "ks-" + uuid.uuid4().hex[:8],
                           "ram": 64, "vcpus": 1, "disk": 1}}
        self.assertFault(self.proc.post("/v2.1/flavors", body,
                                        token=self.token()), 403)
        created = self.proc.post("/v2.1/flavors", body,
                                 token=self.admin_token())
        self.assertEqual(created.code, 200, created)

    def test_context_carries_keystone_project(self):
        # An image created with alice's token is owned by her Keystone
        # project and invisible (private) to another project's user.
        demo_id = self.keystone.project("demo")["id"]
        token = self.token()
        created = self.proc.post("/v2/images", {
            "name": "owned", "visibility": "private"}, api="image",
            token=token)
        self.assertEqual(created.code, 201, created)
        self.assertEqual(created.json["owner"], demo_id)
        other = self.token("bob", OTHER_PASSWORD, "other")
        self.assertFault(self.proc.get(
            f"/v2/images/{created.json['id']}", api="image", token=other),
            404)

    def test_service_token_revoked_is_renewed(self):
        # Validate once so that the API holds a service token, then revoke
        # every token of the service user (a password change does that):
        # the API must authenticate again rather than refuse users.
        self.assertEqual(self.proc.get("/v2.1/flavors",
                                       token=self.token()).code, 200)
        nova = self.keystone.user("nova", SERVICE_PASSWORD, "service",
                                  ("admin",))
        self.keystone.admin("PATCH", f"/v3/users/{nova['id']}", {
            "user": {"password": SERVICE_PASSWORD}})
        # Fernet revocation events have one-second resolution.
        import time
        time.sleep(1.1)
        fresh = self.token()
        response = self.proc.get("/v2.1/flavors", token=fresh)
        self.assertEqual(response.code, 200, response)
        self.proc.wait_for_log("refused our service token")

    # --- the openstack CLI through the catalog ----------------------------

    def clouds_yaml(self, user="alice", password=MEMBER_PASSWORD,
                    project="demo") -> str:
        path = os.path.join(self.proc.directory, f"clouds-{user}.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"""\
clouds:
  ks:
    auth_type: password
    auth:
      auth_url: {self.keystone.auth_url}
      username: {user}
      password: {password}
      project_name: {project}
      user_domain_name: Default
      project_domain_name: Default
    identity_api_version: "3"
    region_name: {REGION}
    interface: public
""")
        return path

    def openstack(self, *args: str, clouds: str | None = None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = clouds or self.clouds_yaml()
        env["HOME"] = self.proc.directory
        argv = [OPENSTACK, "--os-cloud", "ks", *args, "-f", "json"]
        try:
            done = run_command(argv, timeout=CLI_TIMEOUT, env=env,
                               cwd=self.proc.directory)
        except subprocess.TimeoutExpired:
            self.fail(f"openstack {' '.join(args)} took over "
                      f"{CLI_TIMEOUT}s")
        if done.returncode != 0:
            self.fail(f"openstack {' '.join(args)} exited "
                      f"{done.returncode}:\n{done.stdout}\n{done.stderr}\n"
                      f"{self.keystone.log_tail()}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def test_cli_flavor_list(self):
        name = "ks-cli-" + uuid.uuid4().hex[:8]
        created = self.proc.post("/v2.1/flavors", {"flavor": {
            "name": name, "ram": 128, "vcpus": 1, "disk": 1}},
            token=self.admin_token())
        self.assertEqual(created.code, 200, created)
        listed = self.openstack("flavor", "list")
        self.assertIn(name, [row["Name"] for row in listed])

    def test_cli_image_list_and_create(self):
        # A public image made by the admin through the API...
        admin = self.admin_token()
        created = self.proc.post("/v2/images", {
            "name": "ks-public", "visibility": "public",
            "disk_format": "raw", "container_format": "bare"},
            api="image", token=admin)
        self.assertEqual(created.code, 201, created)
        data = b"keystone-authenticated image\n" * 100
        uploaded = self.proc.put(
            f"/v2/images/{created.json['id']}/file", api="image",
            token=admin, raw=data,
            headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(uploaded.code, 204, uploaded)
        # ...is listed for alice by the CLI, which finds the image
        # endpoint in the catalog.
        listed = self.openstack("image", "list")
        self.assertIn(created.json["id"], [row["ID"] for row in listed])
        # And alice uploads one of her own with the CLI.
        path = os.path.join(self.proc.directory, "alice.img")
        with open(path, "wb") as handle:
            handle.write(data)
        image = self.openstack("image", "create", "--file", path,
                               "--disk-format", "raw",
                               "--container-format", "bare", "alice-img")
        self.assertEqual(image["status"], "active")
        self.assertEqual(image["checksum"], hashlib.md5(data).hexdigest())
        self.assertEqual(image["owner"], self.keystone.project("demo")["id"])
