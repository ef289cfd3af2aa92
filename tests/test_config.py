"""Configuration loading and its error messages."""

import os

from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import config


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
