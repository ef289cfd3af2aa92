"""The twistd plugins: all five roles are listed; a role refuses to start
on a broken setup with a message naming what to fix."""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
ROLES = ("compute-api", "compute-conductor", "compute-scheduler",
         "compute-agent", "compute-all")


class PluginTests(SynchronousTestCase):
    def test_help_lists_every_role(self):
        output = subprocess.run([TWISTD, "--help"], capture_output=True,
                                text=True, timeout=60).stdout
        for role in ROLES:
            self.assertIn(role, output)

    def test_db_roles_refuse_an_unmigrated_database(self):
        directory = self.mktemp_dir()
        path = os.path.join(directory, "compute.conf")
        with open(path, "w") as handle:
            handle.write(f"[DEFAULT]\nstate_path = {directory}\n")
        for role in ("compute-conductor", "compute-scheduler",
                     "compute-api"):
            result = subprocess.run(
                [TWISTD, "-n", "--pidfile=", role, "--config-file", path],
                capture_output=True, text=True, timeout=60, cwd=directory)
            self.assertNotEqual(result.returncode, 0, role)
            self.assertIn("db sync", result.stderr, role)
            self.assertNotIn("Traceback", result.stderr + result.stdout)

    def test_agent_refuses_a_bad_transport_url(self):
        directory = self.mktemp_dir()
        path = os.path.join(directory, "compute.conf")
        with open(path, "w") as handle:
            handle.write("[DEFAULT]\ntransport_url = carrier-pigeon://x\n")
        result = subprocess.run(
            [TWISTD, "-n", "--pidfile=", "compute-agent", "--config-file",
             path], capture_output=True, text=True, timeout=60,
            cwd=directory)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("transport_url", result.stderr)
        self.assertNotIn("Traceback", result.stderr + result.stdout)

    def test_bad_config_value_exits_naming_option(self):
        directory = self.mktemp_dir()
        path = os.path.join(directory, "bad.conf")
        with open(path, "w") as handle:
            handle.write("[DEFAULT]\nosapi_compute_workers = zero\n")
        result = subprocess.run(
            [TWISTD, "-n", "--pidfile=", "compute-api", "--config-file",
             path], capture_output=True, text=True, timeout=60,
            cwd=directory)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("[DEFAULT] osapi_compute_workers", result.stderr)
        self.assertIn(path, result.stderr)
        self.assertNotIn("Traceback", result.stderr + result.stdout)

    def mktemp_dir(self):
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path
