"""The project as a user installs it: a wheel built from the tree and a
plain (PEP 660) editable install, each in a clean venv, give ``twistd``
the project's plugins, and ``twistd compute-all`` from the wheel serves
the API.

The clean venvs reuse the test venv's installed dependencies through a
plain path line (not its ``.pth`` files, which would put this source
tree on ``sys.path`` and hide what the venv installed), so that the test
needs no download and checks only the project's own packaging."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile

from twisted.trial.unittest import TestCase

from tests.integration.harness import (
    LOOPBACK, free_port, http_request, wait_until)

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SITE_PACKAGES = sysconfig.get_paths()["purelib"]


def run(args, cwd=None, timeout=300.0, env=None):
    result = subprocess.run(args, cwd=cwd, timeout=timeout, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\n"
                             f"{result.stdout}\n{result.stderr}")
    return result.stdout


class PackagingTests(TestCase):
    timeout = 600

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="tc-pkg-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        # A copy of the tree, so that building leaves no files in it.
        self.tree = os.path.join(self.directory, "src")
        shutil.copytree(SOURCE, self.tree, ignore=shutil.ignore_patterns(
            ".git", ".venv*", "_trial_temp*", "state", "build", "dist",
            "*.egg-info", "__pycache__", "dropin.cache"))

    def venv(self, name: str) -> str:
        path = os.path.join(self.directory, name)
        run([sys.executable, "-m", "venv", "--without-pip", path])
        site = os.path.join(path, "lib",
                            f"python{sys.version_info[0]}."
                            f"{sys.version_info[1]}", "site-packages")
        with open(os.path.join(site, "zz-test-deps.pth"), "w") as handle:
            handle.write(SITE_PACKAGES + "\n")
        return path

    def clean_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["HOME"] = self.directory
        return env

    def pip(self, venv: str, *args: str) -> str:
        return run([os.path.join(venv, "bin", "python"), "-m", "pip",
                    "--disable-pip-version-check", *args],
                   env=self.clean_env())

    @staticmethod
    def twistd(venv: str) -> list[str]:
        """``twistd`` of ``venv``'s interpreter (Twisted itself is one of
        the reused dependencies, so the venv has no script of its own)."""
        return [os.path.join(venv, "bin", "python"), "-c",
                "import sys; from twisted.scripts.twistd import run; "
                "sys.argv[0] = 'twistd'; run()"]

    def plugins(self, venv: str) -> str:
        return run(self.twistd(venv) + ["--help"], cwd=self.directory,
                   env=self.clean_env())

    def test_editable_install_has_the_plugins(self):
        venv = self.venv("editable")
        self.pip(venv, "install", "--no-deps", "--no-build-isolation",
                 "-e", self.tree)
        listed = self.plugins(venv)
        for role in ("compute-all", "compute-api", "compute-agent",
                     "compute-conductor", "compute-scheduler"):
            self.assertIn(role, listed)
        where = run([os.path.join(venv, "bin", "python"), "-c",
                     "import twisted_compute; print(twisted_compute.__file__)"],
                    cwd=self.directory, env=self.clean_env())
        self.assertTrue(where.startswith(self.tree), where)

    def test_wheel_runs_compute_all(self):
        dist = os.path.join(self.directory, "dist")
        self.pip(self.venv("builder"), "wheel", "--no-deps",
                 "--no-build-isolation", "-w", dist, self.tree)
        wheels = [f for f in os.listdir(dist) if f.endswith(".whl")]
        self.assertEqual(len(wheels), 1, wheels)
        venv = self.venv("wheel")
        self.pip(venv, "install", "--no-deps", os.path.join(dist, wheels[0]))
        self.assertIn("compute-all", self.plugins(venv))
        where = run([os.path.join(venv, "bin", "python"), "-c",
                     "import twisted_compute; print(twisted_compute.__file__)"],
                    cwd=self.directory, env=self.clean_env())
        self.assertTrue(where.startswith(venv), where)

        state = os.path.join(self.directory, "state")
        ports = {api: free_port() for api in
                 ("osapi_compute", "metadata", "image")}
        config = os.path.join(self.directory, "compute.conf")
        with open(config, "w") as handle:
            handle.write("[DEFAULT]\n")
            handle.write(f"state_path = {state}\n")
            for api, port in ports.items():
                handle.write(f"{api}_listen = {LOOPBACK}\n"
                             f"{api}_listen_port = {port}\n")
        log = os.path.join(self.directory, "twistd.log")
        with open(log, "wb") as out:
            process = subprocess.Popen(
                self.twistd(venv) + ["-n", "--pidfile=", "compute-all",
                                     "--config-file", config],
                cwd=self.directory, env=self.clean_env(), stdout=out,
                stderr=subprocess.STDOUT)

        def stop():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.addCleanup(stop)

        def answers():
            if process.poll() is not None:
                with open(log) as handle:
                    raise AssertionError(f"compute-all exited "
                                         f"{process.returncode}:\n"
                                         f"{handle.read()}")
            try:
                response = http_request(LOOPBACK, ports["osapi_compute"],
                                        "GET", "/v2.1/flavors")
            except OSError:
                return None
            return response if response.code == 200 else None
        response = wait_until(answers, timeout=60,
                              message="compute-all from the wheel")
        self.assertIn("m1.tiny", [f["name"] for f in
                                  response.json["flavors"]])
        # The pipeline and policy files came with the wheel.
        self.assertTrue(os.path.exists(os.path.join(
            venv, "etc", "twisted-compute", "api-pipeline.ini")))
