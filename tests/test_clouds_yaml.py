"""The clouds.yaml that compute-all writes and ``compute-manage
clouds-yaml`` prints, read back by openstacksdk's own config loader."""

from __future__ import annotations

import contextlib
import io
import os
import stat

import yaml
from twisted.trial.unittest import SynchronousTestCase

from tests.base import make_conf
from twisted_compute import clouds_yaml
from twisted_compute.all_in_one import embedded_defaults
from twisted_compute.cmd import manage


def sdk_cloud(path: str, cloud: str = "twisted-compute"):
    """The cloud as openstacksdk's loader (what the CLI uses) sees it."""
    from openstack.config import loader
    return loader.OpenStackConfig(config_files=[path], load_envvars=False,
                                  vendor_files=[]).get_one(cloud)


class RenderTests(SynchronousTestCase):
    def setUp(self):
        self.state = self.mktemp()
        os.makedirs(self.state)

    def conf(self, **groups):
        return make_conf(self.state, **groups)

    def test_noauth_listeners(self):
        conf = self.conf(api={"auth_strategy": "noauth"}, DEFAULT={
            "osapi_compute_listen_port": 18774, "image_listen_port": 19292,
            "image_listen": "192.0.2.7"})
        path = clouds_yaml.write(conf)
        self.assertEqual(path, os.path.join(self.state, "clouds.yaml"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        cloud = yaml.safe_load(open(path))["clouds"]["twisted-compute"]
        self.assertEqual(cloud["auth_type"], "password")
        self.assertEqual(cloud["auth"]["auth_url"],
                         "http://127.0.0.1:18774/identity")
        self.assertEqual(
            (cloud["auth"]["username"], cloud["auth"]["project_name"]),
            ("admin", "admin"))
        self.assertEqual(cloud["image_endpoint_override"],
                         "http://192.0.2.7:19292")
        region = sdk_cloud(path)
        self.assertEqual(region.get_auth_args()["auth_url"],
                         "http://127.0.0.1:18774/identity")
        self.assertEqual(region.get_endpoint("compute"),
                         "http://127.0.0.1:18774/v2.1")
        self.assertEqual(region.get_endpoint("image"),
                         "http://192.0.2.7:19292")
        self.assertEqual(
            clouds_yaml.export_line(conf, path),
            f"export OS_CLIENT_CONFIG_FILE={path} OS_CLOUD=twisted-compute")

    def test_keystone_ssl_ipv6_and_prefixes(self):
        conf = self.conf(
            api={"auth_strategy": "keystone"},
            keystone_authtoken={"auth_url": "https://ks.example/v3"},
            DEFAULT={"osapi_compute_listen": "::",
                     "enabled_ssl_apis": ["osapi_compute"]})
        cloud = yaml.safe_load(clouds_yaml.render(conf, "c"))["clouds"]["c"]
        self.assertEqual(cloud["auth_type"], "password")
        self.assertEqual(cloud["auth"]["auth_url"], "https://ks.example/v3")
        self.assertNotIn("password", cloud["auth"])
        self.assertNotIn("identity_endpoint_override", cloud)
        self.assertEqual(cloud["compute_endpoint_override"],
                         "https://[::1]:8774/v2.1")
        self.assertIn("OS_PASSWORD", clouds_yaml.export_line(conf, "/x"))
        conf = self.conf(api={"compute_link_prefix": "https://cloud/c/",
                              "glance_link_prefix": "https://cloud/i"})
        cloud = yaml.safe_load(clouds_yaml.render(conf))["clouds"][
            "twisted-compute"]
        self.assertEqual(cloud["compute_endpoint_override"],
                         "https://cloud/c/v2.1")
        self.assertEqual(cloud["image_endpoint_override"], "https://cloud/i")
        conf = self.conf(glance={"api_servers": "http://img:9292/, x"})
        self.assertIn('image_endpoint_override: "http://img:9292"',
                      clouds_yaml.render(conf))

    def test_all_in_one_defaults_are_noauth(self):
        conf = embedded_defaults(self.conf())
        cloud = yaml.safe_load(clouds_yaml.render(conf))["clouds"][
            "twisted-compute"]
        self.assertTrue(cloud["auth"]["auth_url"].endswith("/identity"))


class ManageTests(SynchronousTestCase):
    def run_manage(self, *argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = manage.main(list(argv))
        return code, out.getvalue()

    def test_prints_for_the_config(self):
        directory = self.mktemp()
        os.makedirs(directory)
        ini = os.path.join(directory, "compute.conf")
        with open(ini, "w") as handle:
            handle.write("[DEFAULT]\nosapi_compute_listen_port = 28774\n"
                         "[api]\nauth_strategy = noauth\n")
        code, out = self.run_manage("--config-file", ini, "clouds-yaml",
                                    "--cloud", "mine")
        self.assertEqual(code, 0)
        cloud = yaml.safe_load(out)["clouds"]["mine"]
        self.assertEqual(cloud["compute_endpoint_override"],
                         "http://127.0.0.1:28774/v2.1")
        code, out = self.run_manage("clouds-yaml")
        self.assertEqual(yaml.safe_load(out)["clouds"]["twisted-compute"][
            "auth_type"], "password")
        code, out = self.run_manage("clouds-yaml", "--all-in-one")
        self.assertEqual(yaml.safe_load(out)["clouds"]["twisted-compute"][
            "auth_type"], "password")
