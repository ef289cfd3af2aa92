"""schemathesis against a running ``twistd compute-all`` (noauth, the
fake driver), with the API's own OpenAPI documents (``/openapi.json``):
generated and negative cases (coverage and fuzzing phases) and stateful
sequences along the documents' links (POST /servers -> GET
/servers/{id}, ...).

The bar: no server error (5xx; a documented 501 for what is not
implemented is not one), every answer conforms to the document (status,
content type, body), no traceback in any answer, and afterwards the
process still serves (GET /v2.1/flavors answers 200) and its log has no
unhandled error.

The run is bounded (a fixed number of examples per operation, a fixed
seed, a time budget per API).  A longer run (see bench/README.md)::

    TWISTED_COMPUTE_FUZZ_EXAMPLES=100 TWISTED_COMPUTE_FUZZ_SECONDS=1800 \\
    TWISTED_COMPUTE_FUZZ_MICROVERSIONS=2.1,2.35,2.79 \\
        trial tests.integration.test_fuzz

Each run writes schemathesis's JSON report (and its console output) to
``TWISTED_COMPUTE_FUZZ_REPORTS`` when set, and prints its figures
(operations, cases, failures).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from tests.base import ROOT as ROOT_DIR
from tests.integration.harness import ADMIN, BIN, TwistdTestCase, api_image

ST = os.path.join(BIN, "st")

#: examples per operation, seconds per API, seed (CI's bounded run)
EXAMPLES = int(os.environ.get("TWISTED_COMPUTE_FUZZ_EXAMPLES", "5"))
SECONDS = int(os.environ.get("TWISTED_COMPUTE_FUZZ_SECONDS", "90"))
SEED = int(os.environ.get("TWISTED_COMPUTE_FUZZ_SEED", "20261202"))
MICROVERSIONS = [v.strip() for v in os.environ.get(
    "TWISTED_COMPUTE_FUZZ_MICROVERSIONS", "").split(",") if v.strip()]

#: The checks asserted (no_traceback: tests/integration/fuzz_hooks.py).
CHECKS = ("not_a_server_error", "status_code_conformance",
          "content_type_conformance", "response_schema_conformance",
          "no_traceback")

#: What a 5xx that is not a server error looks like: 501, documented
#: where the project answers it for what it does not implement.
NOT_SERVER_ERRORS = ("501",)

#: Lines of the process's log that mean an unhandled error.
LOG_ERRORS = ("Unhandled Error", "Unhandled error in Deferred",
              "Unexpected error handling")


def _toml_string(value: str) -> str:
    return json.dumps(value)


def config_toml(dictionaries: dict[str, list[str]],
                parameters: dict[str, str]) -> str:
    """A schemathesis config: real ids for path parameters (drawn with
    a probability, so random ones are tried too)."""
    lines = ["[checks.not_a_server_error]",
             "expected-statuses = [" + ", ".join(
                 _toml_string(s) for s in
                 ("2xx", "3xx", "4xx") + NOT_SERVER_ERRORS) + "]", ""]
    for name, values in dictionaries.items():
        lines.append(f"[dictionaries.{name}]")
        lines.append("values = [" + ", ".join(
            _toml_string(v) for v in values) + "]")
        lines.append("")
    lines.append("[parameters]")
    for key, dictionary in parameters.items():
        lines.append(f"{_toml_string(key)} = {{ dictionary = "
                     f"{_toml_string(dictionary)}, probability = 0.6 }}")
    return "\n".join(lines) + "\n"


class FuzzTests(TwistdTestCase):
    """schemathesis against compute-all's compute and image APIs."""

    shared = {"role": "compute-all", "apis": ("osapi_compute", "image")}

    def setUp(self):
        super().setUp()
        if not os.path.exists(ST):
            self.fail(f"schemathesis is not installed ({ST}); it is in "
                      f"setup.py's test extra")
        self.work = tempfile.mkdtemp(prefix="tc-fuzz-")
        self.addCleanup(shutil.rmtree, self.work, True)

    # --- what the run works on ------------------------------------------

    def seed_resources(self) -> dict[str, list[str]]:
        """Real resources for the path parameters: servers, a key pair,
        an aggregate, a server group, flavors, an image."""
        proc = self.proc
        version = "2.79"
        flavors = proc.get("/v2.1/flavors", token=ADMIN,
                           version=version).json["flavors"]
        self.assertTrue(flavors, "compute-all has no flavors")
        image = api_image(proc)
        servers = []
        for index in range(3):
            response = proc.post("/v2.1/servers", {"server": {
                "name": f"fuzz-{index}", "flavorRef": flavors[0]["id"],
                "imageRef": image, "networks": "none",
                "metadata": {"fuzz": "yes"}, "tags": ["fuzz"]}},
                token=ADMIN, version=version)
            self.assertEqual(response.code, 202, response)
            servers.append(response.json["server"]["id"])
        response = proc.post("/v2.1/os-keypairs", {"keypair": {
            "name": "fuzz-key"}}, token=ADMIN, version=version)
        self.assertEqual(response.code, 201, response)
        response = proc.post("/v2.1/os-aggregates", {"aggregate": {
            "name": "fuzz-aggregate"}}, token=ADMIN, version=version)
        self.assertEqual(response.code, 200, response)
        aggregate = str(response.json["aggregate"]["id"])
        response = proc.post("/v2.1/os-server-groups", {"server_group": {
            "name": "fuzz-group", "policy": "affinity"}}, token=ADMIN,
            version=version)
        self.assertEqual(response.code, 200, response)
        group = response.json["server_group"]["id"]
        return {
            "servers": servers, "flavors": [f["id"] for f in flavors],
            "keypairs": ["fuzz-key"], "aggregates": [aggregate],
            "groups": [group], "images": [image], "projects": ["admin"],
            "keys": ["fuzz"], "tags": ["fuzz"],
        }

    PARAMETERS = {
        "path.server_id": "servers", "path.flavor_id": "flavors",
        "path.name": "keypairs", "path.aggregate_id": "aggregates",
        "path.group_id": "groups", "path.image_id": "images",
        "path.project_id": "projects", "path.key": "keys",
        "path.tag": "tags",
    }

    # --- one schemathesis run -------------------------------------------

    def run_schemathesis(self, label: str, url: str,
                         headers: dict[str, str], seconds: int,
                         config: str) -> dict:
        """``st run`` with the bounded settings; returns its JSON
        report."""
        report_dir = os.path.join(self.work, label)
        config_file = os.path.join(self.work, f"{label}.toml")
        with open(config_file, "w", encoding="utf-8") as handle:
            handle.write(config)
        argv = [ST, "--config-file", config_file, "run", url,
                "--checks", ",".join(CHECKS),
                "--phases", "coverage,fuzzing,stateful",
                "--max-examples", str(EXAMPLES), "--seed", str(SEED),
                "--max-time", str(seconds), "--workers", "1",
                "--request-timeout", "20", "--no-shrink",
                "--report", "json", "--report-dir", report_dir,
                "--warnings", "off"]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        env = dict(os.environ)
        env["SCHEMATHESIS_HOOKS"] = "tests.integration.fuzz_hooks"
        env["PYTHONPATH"] = ROOT_DIR + os.pathsep + env.get(
            "PYTHONPATH", "")
        env.pop("CI", None)  # no CI-specific output of schemathesis
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, env=env, cwd=self.work,
                timeout=seconds + 240)
        except subprocess.TimeoutExpired as exc:
            self.fail(f"schemathesis ({label}) did not end within "
                      f"{seconds + 240}s:\n{exc.stdout}")
        reports = glob.glob(os.path.join(report_dir, "*.json"))
        self.assertTrue(reports, f"no schemathesis report ({label}):\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr}")
        with open(reports[0], encoding="utf-8") as handle:
            report = json.load(handle)
        keep = os.environ.get("TWISTED_COMPUTE_FUZZ_REPORTS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(reports[0], os.path.join(keep, f"{label}.json"))
            with open(os.path.join(keep, f"{label}.txt"), "w",
                      encoding="utf-8") as handle:
                handle.write(done.stdout)
        cases = report["test_cases"]
        sys.stderr.write(
            f"\nschemathesis {label}: {report['operations']['tested']} "
            f"operations, {cases['generated']} cases, "
            f"{cases['unique_failures']} unique failures, "
            f"{len(report['errors'])} errors, "
            f"{report['running_time']:.0f}s\n")
        self.assertGreater(report["operations"]["tested"], 0)
        self.assertGreater(cases["generated"], 0)
        if report["failures"] or report["errors"]:
            self.problems.append(
                f"schemathesis ({label}): failures {report['failures']}, "
                f"errors {report['errors']}\n{done.stdout[-6000:]}")
        return report

    def assert_healthy(self):
        """The process still serves, and logged no unhandled error."""
        self.assertTrue(self.proc.running(), self.proc.describe())
        response = self.proc.get("/v2.1/flavors", token=ADMIN)
        self.assertEqual(response.code, 200, response)
        log = self.proc.log_text()
        for marker in LOG_ERRORS:
            at = log.find(marker)
            if at >= 0:
                self.fail(f"{marker!r} in the log of "
                          f"{self.proc.describe(0)}:\n"
                          f"{log[max(0, at - 1500):at + 4000]}")

    # --- the tests ------------------------------------------------------

    def test_compute_and_image(self):
        from twisted_compute.api.openstack import api_version
        #: what each run found (all runs go on; the test fails at the end)
        self.problems: list[str] = []
        dictionaries = self.seed_resources()
        config = config_toml(dictionaries, self.PARAMETERS)
        base = self.proc.url("osapi_compute")
        for version in MICROVERSIONS or [str(api_version.MAX_VERSION)]:
            self.run_schemathesis(
                f"compute-{version}",
                f"{base}/openapi.json?microversion={version}",
                {"X-Auth-Token": ADMIN,
                 "OpenStack-API-Version": f"compute {version}"},
                SECONDS, config)
            self.assert_healthy()
        self.run_schemathesis(
            "image", self.proc.url("image") + "/openapi.json",
            {"X-Auth-Token": ADMIN}, max(30, SECONDS // 3), config)
        self.assert_healthy()
        self.assertEqual(self.problems, [], "\n\n".join(self.problems))
