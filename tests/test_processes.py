"""Each role builds its own process and imports only what it needs: the
API, the conductor and the scheduler never import the virt layer.

Each process is built as ``twistd <role>`` builds it (the plugin's
``ServiceMaker``, its options, ``makeService``), in a fresh interpreter,
without running the reactor."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.base import migrated_sqlite

#: Run in a fresh interpreter: build the role named by argv[1] from the
#: config file argv[2]; print its services and the modules it imported.
BUILD = """
import json, sys
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted import plugins

role, path = sys.argv[1], sys.argv[2]
maker, = [m for m in getPlugins(IServiceMaker, plugins)
          if m.tapname == role]
options = maker.options()
options.parseOptions(["--config-file", path])
top = maker.makeService(options)
print(json.dumps({"services": [s.name for s in top],
                  "modules": sorted(sys.modules)}))
"""


def virt_modules(modules):
    return [name for name in modules
            if name == "libvirt" or name.startswith("libvirt.")
            or name == "twisted_compute.virt"
            or name.startswith("twisted_compute.virt.")]


def project_modules(modules):
    return [name for name in modules if name.startswith("twisted_compute")]


class RoleImportTests(SynchronousTestCase):

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        migrated_sqlite(self.directory)  # $state_path/compute.sqlite
        self.path = os.path.join(self.directory, "compute.conf")
        with open(self.path, "w") as handle:
            handle.write(
                "[DEFAULT]\n"
                f"state_path = {self.directory}\n"
                "transport_url = local://\n"
                "osapi_compute_listen = 127.0.0.1\n"
                "osapi_compute_listen_port = 0\n"
                "metadata_listen = 127.0.0.1\n"
                "metadata_listen_port = 0\n"
                "image_listen = 127.0.0.1\n"
                "image_listen_port = 0\n"
                "[api]\n"
                "auth_strategy = noauth\n")

    def build(self, role: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-c", BUILD, role, self.path],
            capture_output=True, text=True, timeout=120,
            cwd=self.directory)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout.strip().splitlines()[-1])

    def test_api_imports_no_virt_code(self):
        built = self.build("compute-api")
        for api in ("osapi_compute", "metadata", "image"):
            self.assertIn(f"listener-{api}", built["services"])
        self.assertEqual(virt_modules(built["modules"]), [])
        self.assertNotIn("twisted_compute.compute.manager",
                         project_modules(built["modules"]))

    def test_conductor_and_scheduler_import_no_virt_code(self):
        for role in ("compute-conductor", "compute-scheduler"):
            built = self.build(role)
            self.assertIn("db", built["services"], role)
            self.assertEqual(virt_modules(built["modules"]), [], role)
            self.assertNotIn("twisted_compute.compute.resource_tracker",
                             project_modules(built["modules"]), role)

    def test_agent_imports_its_driver(self):
        # The check above sees virt modules where a role does use them.
        built = self.build("compute-agent")
        self.assertIn("nova-compute-" + socket.gethostname(),
                      built["services"])
        self.assertIn("twisted_compute.virt.fake",
                      virt_modules(built["modules"]))
        # It has no database: the conductor is its only way to it.
        self.assertNotIn("twisted_compute.db.pool",
                         project_modules(built["modules"]))
