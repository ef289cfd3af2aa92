"""Configuration loading and its error messages."""

import ast
import io
import os
import subprocess
import sys
import types
from contextlib import redirect_stdout

from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import conf, config
from twisted_compute.cmd import manage


class ConfigTests(SynchronousTestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def test_defaults(self):
        conf = config.load([])
        self.assertEqual(conf.osapi_compute_listen_port, 8774)
        self.assertEqual(conf.api.max_limit, 1000)
        self.assertEqual(conf.enabled_apis,
                         ["osapi_compute", "metadata", "image"])

    def test_later_file_wins(self):
        first = self.write("[DEFAULT]\nhost = a\n[api]\nmax_limit = 5\n")
        second = self.write("[DEFAULT]\nhost = b\n")
        conf = config.load([first, second])
        self.assertEqual(conf.host, "b")
        self.assertEqual(conf.api.max_limit, 5)
        self.assertEqual(conf.sources[("DEFAULT", "host")], second)

    def test_bad_value_names_option_and_file(self):
        path = self.write("[api]\nmax_limit = many\n")
        error = self.assertRaises(config.ConfigError, config.load, [path])
        self.assertIn("[api] max_limit", str(error))
        self.assertIn(path, str(error))
        self.assertIn("not an integer", str(error))

    def test_bad_choice_and_port(self):
        path = self.write("[api]\nauth_strategy = magic\n")
        error = self.assertRaises(config.ConfigError, config.load, [path])
        self.assertIn("auth_strategy", str(error))
        path = self.write("[DEFAULT]\nosapi_compute_listen_port = 70000\n")
        error = self.assertRaises(config.ConfigError, config.load, [path])
        self.assertIn("osapi_compute_listen_port", str(error))

    def test_missing_file(self):
        error = self.assertRaises(config.ConfigError, config.load,
                                  ["/nonexistent/compute.conf"])
        self.assertIn("/nonexistent/compute.conf", str(error))

    def test_sample_is_current(self):
        sample = os.path.join(os.path.dirname(__file__), "..", "etc",
                              "twisted-compute", "compute.conf.sample")
        with open(sample) as handle:
            self.assertEqual(handle.read(), config.sample(),
                             "regenerate etc/twisted-compute/"
                             "compute.conf.sample with "
                             "'compute-manage config sample'")

    def test_sample_is_what_compute_manage_prints(self):
        sample = os.path.join(os.path.dirname(__file__), "..", "etc",
                              "twisted-compute", "compute.conf.sample")
        out = io.StringIO()
        with redirect_stdout(out):
            status = manage.main(["config", "sample"])
        self.assertEqual(status, 0)
        with open(sample) as handle:
            self.assertEqual(handle.read(), out.getvalue())

    def test_options_of_every_role_are_read_without_their_code(self):
        path = self.write("[libvirt]\nvirt_type = test\n"
                          "[fake_driver]\nvcpus = 4\n"
                          "[scheduler]\nmax_attempts = 5\n"
                          "[DEFAULT]\ncpu_allocation_ratio = 2.0\n"
                          "instance_build_timeout = 30\n")
        conf = config.load([path])
        self.assertEqual(conf.libvirt.virt_type, "test")
        self.assertEqual(conf.fake_driver.vcpus, 4)
        self.assertEqual(conf.scheduler.max_attempts, 5)
        self.assertEqual(conf.cpu_allocation_ratio, 2.0)
        self.assertEqual(conf.instance_build_timeout, 30)
        self.assertEqual(conf.glance.auth_token, "admin:admin")
        path = self.write("[libvirt]\nvirt_type = xen\n")
        error = self.assertRaises(config.ConfigError, config.load, [path])
        self.assertIn("[libvirt] virt_type", str(error))


class OptionTableTests(SynchronousTestCase):
    """``twisted_compute.conf``: data only, in a stable order."""

    def test_conf_imports_no_other_project_code(self):
        # Statically, lazy imports included: the standard library, attrs
        # and the package itself, nothing else.
        directory = os.path.dirname(conf.__file__)
        allowed = set(sys.stdlib_module_names) | {"attrs"}
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".py"):
                continue
            with open(os.path.join(directory, name)) as handle:
                tree = ast.parse(handle.read(), name)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                else:
                    continue
                for module in modules:
                    self.assertTrue(
                        module.split(".")[0] in allowed
                        or module == "twisted_compute.conf"
                        or module.startswith("twisted_compute.conf."),
                        f"conf/{name} imports {module}")
        # And at run time, in a fresh interpreter.
        result = subprocess.run(
            [sys.executable, "-c",
             "import sys, twisted_compute.conf; print(sorted(m for m in "
             "sys.modules if m.startswith('twisted_compute')))"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        imported = ast.literal_eval(result.stdout.strip())
        self.assertEqual(
            [m for m in imported if m != "twisted_compute"
             and not m.startswith("twisted_compute.conf")], [])

    def test_sections_in_a_stable_order(self):
        groups = conf.list_opts()
        self.assertEqual(groups, conf.list_opts())
        names = [group for group, _ in groups]
        self.assertEqual(names[0], "DEFAULT")
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(list(config.OPTIONS), names)
        default = [opt.name for opt in dict(groups)["DEFAULT"]]
        # The core table first, then the roles' options, module by module.
        self.assertEqual(default[:2], ["enabled_apis", "enabled_ssl_apis"])
        self.assertLess(default.index("mkisofs_cmd"),
                        default.index("periodic_fuzzy_delay"))
        self.assertLess(default.index("instance_build_timeout"),
                        default.index("cpu_allocation_ratio"))

    def test_an_option_declared_twice_is_refused(self):
        opt = conf.Opt("max_limit", "int", 1, "again")
        twice = types.SimpleNamespace(
            list_opts=lambda: [("api", [opt])])
        self.patch(conf, "_MODULES", conf._MODULES + (twice,))
        error = self.assertRaises(ValueError, conf.list_opts)
        self.assertIn("[api]", str(error))
        self.assertIn("max_limit", str(error))
