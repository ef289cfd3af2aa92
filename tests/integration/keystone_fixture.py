"""A real Keystone for tests: PyPI's ``keystone`` (30.x) from its own
virtualenv ``.venv-keystone`` (``tools/install-keystone``), on SQLite, in
a temporary directory, served on a free loopback port by wsgiref in a
child process.

:func:`shared_keystone` starts one per test run on first use (stopped at
exit, or by :func:`stop_shared_keystone`); :class:`KeystoneServer` also
talks to it: password tokens, and the few admin calls the tests need
(projects, users, role assignments, services and endpoints).

A test that needs it calls :func:`require_keystone` first: it skips when
the virtualenv is missing, unless ``TWISTED_COMPUTE_DEMAND`` names
``keystone`` (or ``all``), in which case it fails.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

from tests import base
from tests.integration.harness import LOOPBACK, free_port, run_command

KEYSTONE_VENV = os.environ.get(
    "KEYSTONE_VENV", os.path.join(base.ROOT, ".venv-keystone"))
KEYSTONE_PYTHON = os.path.join(KEYSTONE_VENV, "bin", "python")
KEYSTONE_MANAGE = os.path.join(KEYSTONE_VENV, "bin", "keystone-manage")

ADMIN_PASSWORD = "admin-secret"
REGION = "RegionOne"
#: seconds for one keystone-manage command, and for the server to answer
MANAGE_TIMEOUT = 120.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

_SERVE = """\
import os, sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

# oslo.config parses sys.argv: hand it nothing of ours.
config_file, port = sys.argv[1], int(sys.argv[2])
sys.argv = sys.argv[:1]
os.environ["OS_KEYSTONE_CONFIG_FILES"] = config_file
from keystone.server import wsgi

app = wsgi.initialize_public_application()


class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("keystone: %s\\n" % (format % args))


server = make_server("127.0.0.1", port, app, handler_class=Handler)
sys.stderr.write("keystone: serving on port %d\\n" % port)
sys.stderr.flush()
server.serve_forever()
"""


def keystone_installed() -> bool:
    return os.access(KEYSTONE_MANAGE, os.X_OK) and \
        os.access(KEYSTONE_PYTHON, os.X_OK)


def require_keystone() -> None:
    """Skip (or fail when demanded) unless ``.venv-keystone`` exists."""
    base.require_service(
        "keystone", check=keystone_installed,
        host=f"{KEYSTONE_VENV} (run tools/install-keystone)")


class KeystoneError(AssertionError):
    pass


class KeystoneServer:
    """One Keystone in a temporary directory."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="tc-keystone-")
        self.config_file = os.path.join(self.directory, "keystone.conf")
        self.log_file = os.path.join(self.directory, "keystone.log")
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.auth_url = self.url + "/v3"
        self.process: subprocess.Popen | None = None
        self._log = None
        self._admin_token: tuple[str, float] | None = None

    # --- life cycle -----------------------------------------------------

    def _write_config(self) -> None:
        sections = {
            "DEFAULT": {"use_stderr": "true", "debug": "false"},
            "database": {"connection": "sqlite:///" + os.path.join(
                self.directory, "keystone.sqlite")},
            "fernet_tokens": {"key_repository": os.path.join(
                self.directory, "fernet-keys")},
            "fernet_receipts": {"key_repository": os.path.join(
                self.directory, "fernet-keys")},
            "credential": {"key_repository": os.path.join(
                self.directory, "credential-keys")},
            "token": {"provider": "fernet", "expiration": "3600"},
            "cache": {"enabled": "false"},
        }
        with open(self.config_file, "w", encoding="utf-8") as handle:
            for section, values in sections.items():
                handle.write(f"[{section}]\n")
                for name, value in values.items():
                    handle.write(f"{name} = {value}\n")
                handle.write("\n")

    def _manage(self, *args: str) -> None:
        argv = [KEYSTONE_MANAGE, "--config-file", self.config_file, *args]
        try:
            done = run_command(argv, timeout=MANAGE_TIMEOUT,
                               cwd=self.directory)
        except subprocess.TimeoutExpired:
            raise KeystoneError(
                f"keystone-manage {args[0]} took over {MANAGE_TIMEOUT}s") \
                from None
        if done.returncode != 0:
            raise KeystoneError(
                f"keystone-manage {' '.join(args[:1])} failed "
                f"({done.returncode}):\n{done.stdout[-2000:]}\n"
                f"{done.stderr[-4000:]}")

    def start(self) -> "KeystoneServer":
        """Set up the database and keys, bootstrap the admin user and
        the identity endpoint, then serve (returns once it answers)."""
        self._write_config()
        self._manage("db_sync")
        self._manage("fernet_setup", "--keystone-user", str(os.getuid()),
                     "--keystone-group", str(os.getgid()))
        self._manage("credential_setup", "--keystone-user",
                     str(os.getuid()), "--keystone-group", str(os.getgid()))
        self._manage("bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
                     "--bootstrap-admin-url", self.auth_url,
                     "--bootstrap-public-url", self.auth_url,
                     "--bootstrap-internal-url", self.auth_url,
                     "--bootstrap-region-id", REGION)
        script = os.path.join(self.directory, "serve.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(_SERVE)
        self._log = open(self.log_file, "ab")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OS_", "TWISTED_COMPUTE"))}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [KEYSTONE_PYTHON, script, self.config_file, str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, cwd=self.directory, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise KeystoneError(
                    f"keystone exited with {self.process.returncode}\n"
                    f"{self.log_tail()}")
            try:
                if self.request("GET", "/v3", token=None)[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise KeystoneError(
                    f"keystone did not answer within {START_TIMEOUT}s\n"
                    f"{self.log_tail()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_file, encoding="utf-8",
                      errors="replace") as handle:
                text = handle.read()
        except OSError:
            text = ""
        return "--- keystone log:\n" + "\n".join(
            text.splitlines()[-lines:]) + "\n---"

    # --- HTTP -------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None,
                token: str | None = None,
                headers: dict[str, str] | None = None,
                timeout: float = 30.0
                ) -> tuple[int, dict[str, str], Any]:
        """(status, lower-case headers, JSON body or None)."""
        all_headers = {"Accept": "application/json"}
        if token is not None:
            all_headers["X-Auth-Token"] = token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        conn = http.client.HTTPConnection(LOOPBACK, self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            raw = response.read()
            content = json.loads(raw) if raw.strip() else None
            return (response.status,
                    {k.lower(): v for k, v in response.getheaders()},
                    content)
        finally:
            conn.close()

    def password_token(self, username: str, password: str,
                       project: str | None = None,
                       domain: str = "Default") -> tuple[str, dict]:
        """A token for ``username`` (scoped to ``project`` when given) and
        its body."""
        auth: dict[str, Any] = {"identity": {
            "methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": domain},
                "password": password}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project,
                                         "domain": {"name": domain}}}
        status, headers, body = self.request(
            "POST", "/v3/auth/tokens", {"auth": auth})
        if status != 201:
            raise KeystoneError(f"token for {username}: {status} {body}")
        return headers["x-subject-token"], body

    def admin_token(self) -> str:
        if self._admin_token is None or \
                self._admin_token[1] < time.monotonic():
            token, _ = self.password_token("admin", ADMIN_PASSWORD, "admin")
            self._admin_token = (token, time.monotonic() + 600)
        return self._admin_token[0]

    def admin(self, method: str, path: str, body: Any = None,
              expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        status, _, content = self.request(method, path, body,
                                          token=self.admin_token())
        if status not in expect:
            raise KeystoneError(f"{method} {path}: {status} {content}")
        return content

    def _find(self, collection: str, name: str) -> dict | None:
        found = self.admin("GET", f"/v3/{collection}?name={name}")
        items = found[collection]
        return items[0] if items else None

    def project(self, name: str) -> dict:
        """The project ``name`` (created when missing)."""
        return self._find("projects", name) or self.admin(
            "POST", "/v3/projects", {"project": {
                "name": name, "domain_id": "default"}})["project"]

    def role(self, name: str) -> dict:
        return self._find("roles", name) or self.admin(
            "POST", "/v3/roles", {"role": {"name": name}})["role"]

    def user(self, name: str, password: str, project: str,
             roles: tuple[str, ...] = ("member",)) -> dict:
        """A user with ``roles`` on ``project`` (both made if missing)."""
        user = self._find("users", name) or self.admin(
            "POST", "/v3/users", {"user": {
                "name": name, "password": password,
                "domain_id": "default"}})["user"]
        project_id = self.project(project)["id"]
        for role in roles:
            self.admin("PUT", f"/v3/projects/{project_id}/users/"
                       f"{user['id']}/roles/{self.role(role)['id']}")
        return user

    def endpoint(self, service_type: str, name: str, url: str) -> dict:
        """A service of ``service_type`` with public, internal and admin
        endpoints at ``url`` in :data:`REGION` (replacing old ones)."""
        services = self.admin("GET", f"/v3/services?type={service_type}")
        if services["services"]:
            service = services["services"][0]
        else:
            service = self.admin("POST", "/v3/services", {"service": {
                "type": service_type, "name": name,
                "enabled": True}})["service"]
        old = self.admin("GET", f"/v3/endpoints?service_id={service['id']}")
        for endpoint in old["endpoints"]:
            self.admin("DELETE", f"/v3/endpoints/{endpoint['id']}")
        for interface in ("public", "internal", "admin"):
            self.admin("POST", "/v3/endpoints", {"endpoint": {
                "service_id": service["id"], "interface": interface,
                "url": url, "region_id": REGION, "enabled": True}})
        return service


_SHARED: KeystoneServer | None = None


def shared_keystone() -> KeystoneServer:
    """The Keystone of this test run, started on first use."""
    global _SHARED
    require_keystone()
    if _SHARED is not None and not _SHARED.running():
        failed, _SHARED = _SHARED, None
        tail = failed.log_tail()
        failed.cleanup()
        raise KeystoneError(f"the shared keystone died\n{tail}")
    if _SHARED is None:
        server = KeystoneServer()
        try:
            server.start()
        except BaseException:
            server.cleanup()
            raise
        _SHARED = server
    return _SHARED


def stop_shared_keystone() -> None:
    global _SHARED
    server, _SHARED = _SHARED, None
    if server is not None:
        server.cleanup()


atexit.register(stop_shared_keystone)

__all__ = ["KeystoneServer", "shared_keystone", "stop_shared_keystone",
           "require_keystone", "keystone_installed"]
