"""Compute API extensions in running processes.

* An out-of-tree extension: a small package of its own, built in a
  temporary directory with its own ``twisted/plugins`` file, installed by
  pip into a temporary target directory put on ``PYTHONPATH``; ``twistd
  compute-api`` serves its resource and its server attribute, and reads
  its own config option, with no change to the project.
* ``openstack usage list`` and ``usage show`` (os-simple-tenant-usage)
  against ``compute-all``.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import tempfile
import textwrap
import uuid

from tests.integration.harness import TwistdTestCase, run_command
from tests.integration.test_all_in_one import FLAVOR, IMAGE, \
    short_intervals
from tests.integration.test_openstack_cli import (
    OpenStackCLIMixin, clouds_yaml)

_PACKAGE = '''\
"""An extension outside the project: GET /os-hello and a server key."""
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.extensions import ExtensionBase
from twisted_compute.conf.opts import str_opt


class HelloController(Controller):
    app = make_app()
    collections = (("os-hello",),)

    @route(app, "/os-hello", ["GET"])
    async def index(self, request):
        values = self.services.extension_options["os-hello"]
        return json_response(request, {"hello": values.hello.greeting})


class Hello(ExtensionBase):
    name = "Hello"
    alias = "os-hello"
    description = "Says hello, and tags servers with a greeting."

    def controllers(self):
        return (HelloController,)

    def config_options(self):
        return {"hello": [str_opt("greeting", "hello", "What to say")]}

    def extend_server(self, request, context, instance, server):
        server["hello:name_length"] = len(instance.display_name or "")
'''

_PLUGIN = '''\
from tc_hello import Hello
hello = Hello()
'''


def build_extension(directory: str) -> str:
    """Write the package's source under ``directory``/src, install it with
    pip into ``directory``/site; returns the site directory."""
    source = os.path.join(directory, "src")
    os.makedirs(os.path.join(source, "tc_hello"))
    os.makedirs(os.path.join(source, "twisted", "plugins"))
    with open(os.path.join(source, "tc_hello", "__init__.py"), "w") as f:
        f.write(_PACKAGE)
    with open(os.path.join(source, "twisted", "plugins", "tc_hello.py"),
              "w") as f:
        f.write(_PLUGIN)
    with open(os.path.join(source, "setup.py"), "w") as f:
        f.write(textwrap.dedent("""\
            from setuptools import setup
            setup(name="tc-hello-extension", version="0.1",
                  packages=["tc_hello", "twisted.plugins"])
            """))
    site = os.path.join(directory, "site")
    done = run_command([sys.executable, "-m", "pip", "install", "--quiet",
                        "--no-deps", "--no-build-isolation", "--no-index",
                        "--target", site, source], timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    # Twisted finds plugins in every twisted/plugins directory on the
    # path, but only without an __init__.py beside them.
    for stray in (os.path.join(site, "twisted", "__init__.py"),
                  os.path.join(site, "twisted", "plugins", "__init__.py")):
        if os.path.exists(stray):
            os.remove(stray)
    assert os.path.exists(os.path.join(site, "twisted", "plugins",
                                       "tc_hello.py"))
    return site


class OutOfTreeExtensionTests(OpenStackCLIMixin, TwistdTestCase):
    def setUp(self):
        super().setUp()
        directory = tempfile.mkdtemp(prefix="tc-ext-")
        self.addCleanup(shutil.rmtree, directory, True)
        site = build_extension(directory)
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(
            os.pathsep) if p]
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(paths + [site])
        self.addCleanup(self._restore_path, old)
        self.proc = self.start_twistd(
            role="compute-api", apis=("osapi_compute", "image"),
            options={"hello": {"greeting": "bonjour"}})
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")
        with open(self.clouds, "w", encoding="utf-8") as handle:
            handle.write(clouds_yaml(self.proc))

    @staticmethod
    def _restore_path(old):
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old

    def test_resource_attribute_and_option(self):
        log = self.proc.log_text()
        self.assertIn("Compute API extension Hello (os-hello) loaded", log)
        hello = self.proc.request("GET", "/v2.1/os-hello")
        self.assertEqual(hello.code, 200, hello.body)
        self.assertEqual(hello.json, {"hello": "bonjour"})
        listed = self.proc.request("GET", "/v2.1/extensions").json
        aliases = [e["alias"] for e in listed["extensions"]]
        self.assertIn("os-hello", aliases)
        self.assertIn("os-simple-tenant-usage", aliases)

        flavor = self.openstack("flavor", "create", "--ram", "64", "--disk",
                                "1", "--vcpus", "1", "ext-flavor")
        path = os.path.join(self.proc.directory, "small.img")
        with open(path, "wb") as handle:
            handle.write(b"twisted-compute test image\n" * 40)
        image = self.openstack("image", "create", "--file", path,
                               "--disk-format", "raw", "--container-format",
                               "bare", "--public", "ext-image")
        server = self.openstack("server", "create", "--flavor", flavor["id"],
                                "--image", image["id"], "--auto-network",
                                "seven77")
        shown = self.proc.request("GET", f"/v2.1/servers/{server['id']}")
        self.assertEqual(shown.code, 200, shown.body)
        self.assertEqual(shown.json["server"]["hello:name_length"], 7)
        detail = self.proc.request("GET", "/v2.1/servers/detail").json
        self.assertEqual([s["hello:name_length"] for s in detail["servers"]],
                         [7])

    def test_not_loaded_when_not_chosen(self):
        other = self.start_twistd(
            role="compute-api", apis=("osapi_compute",),
            options={"api": {"extensions": "os-simple-tenant-usage"}})
        self.assertEqual(other.request("GET", "/v2.1/os-hello").code, 404)
        listed = other.request("GET", "/v2.1/extensions").json
        self.assertEqual([e["alias"] for e in listed["extensions"]],
                         ["os-simple-tenant-usage"])


def _count(servers) -> int:
    """The CLI's "Servers" column: a count, or the list of servers."""
    return len(servers) if isinstance(servers, list) else int(servers)


class UsageCLITests(OpenStackCLIMixin, TwistdTestCase):
    """``openstack usage list`` / ``usage show`` on compute-all."""

    host = "usage-" + uuid.uuid4().hex[:6]
    shared = {"role": "compute-all", "apis": ("osapi_compute", "image"),
              "options": short_intervals(host)}

    def setUp(self):
        super().setUp()
        self.clouds = os.path.join(self.proc.directory, "clouds.yaml")

    def test_usage_list_and_show(self):
        server = self.openstack("server", "create", "--flavor", FLAVOR,
                                "--image", IMAGE, "--auto-network",
                                "--wait", "usage-" + uuid.uuid4().hex[:6])
        self.assertEqual(server["status"], "ACTIVE", server)
        start = (datetime.datetime.utcnow() - datetime.timedelta(days=1)
                 ).strftime("%Y-%m-%d")
        end = (datetime.datetime.utcnow() + datetime.timedelta(days=1)
               ).strftime("%Y-%m-%d")
        listed = self.openstack("usage", "list", "--start", start,
                                "--end", end)
        self.assertTrue(listed, listed)
        row = listed[0]
        self.assertGreaterEqual(_count(row["Servers"]), 1, row)
        self.assertIn("RAM MB-Hours", row)
        # (Without --project the CLI asks its auth for the project id,
        # which noauth has not got.)
        shown = self.openstack("usage", "show", "--project", row["Project"],
                               "--start", start, "--end", end)
        self.assertGreaterEqual(_count(shown["Servers"]), 1, shown)
        self.assertGreater(float(shown["RAM MB-Hours"]), 0.0, shown)
        done = self.openstack("usage", "list", parse=False)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("Usage from", done.stdout)
