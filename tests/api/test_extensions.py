"""Compute API extensions (Twisted plugins): loading, /extensions, the
hooks (a resource, a server attribute, a server action), and the two
shipped extensions (os-simple-tenant-usage, os-instance_usage_audit_log).
"""

from __future__ import annotations

import datetime
import os

from treq.testing import StubTreq
from twisted.logger import globalLogPublisher

from tests.api.test_servers_base import ServersTestCase
from tests.base import ETC
from twisted_compute.api import pipeline
from twisted_compute.api.openstack import extensions
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)


class HelloController(Controller):
    app = make_app()
    collections = (("os-hello",),)

    @route(app, "/os-hello", ["GET"])
    async def index(self, request):
        return json_response(request, {"hello": "world"})


class Hello(extensions.ExtensionBase):
    name = "Hello"
    alias = "os-hello"
    description = "Says hello."
    min_version = "2.1"
    max_version = "2.50"

    def controllers(self):
        return (HelloController,)

    def extend_server(self, request, context, instance, server):
        server["hello:launch_index"] = instance.launch_index

    def server_actions(self):
        async def wave(services, request, context, instance, body):
            return json_response(request, {"waved": instance.uuid}, 202)
        return {"wave": wave}

    def policy_rules(self):
        return {"hello:index": "rule:admin_api"}


class Broken(extensions.ExtensionBase):
    name = "Broken"
    alias = "os-broken"

    def controllers(self):
        raise RuntimeError("cannot import my controller")


class ExtensionsTestCase(ServersTestCase):
    candidates: tuple = ()

    def setUp(self):
        super().setUp()
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver,
                        self.logged.append)
        if self.candidates:
            self.services.extensions = extensions.load(
                self.conf, self.services.policy,
                list(extensions.discover()) + [c() for c in
                                               self.candidates])
            self.root = pipeline.load_api(
                os.path.join(ETC, "api-pipeline.ini"), self.api_name,
                {"conf": self.conf, "services": self.services})
            self.http = StubTreq(self.root)


class LoadingTests(ExtensionsTestCase):
    candidates = (Hello, Broken)

    def test_broken_extension_is_logged_and_skipped(self):
        aliases = [e.alias for e in self.services.extensions]
        self.assertEqual(aliases, ["os-simple-tenant-usage",
                                   "os-instance_usage_audit_log",
                                   "os-hello"])
        errors = [e for e in self.logged if "Broken" in str(
            e.get("name", ""))]
        self.assertTrue(errors)
        self.assertIn("cannot import", str(errors[0]["error"]))

    def test_extensions_listed(self):
        body = self.get("/v2.1/extensions", token="u:p").json
        self.assertEqual([e["alias"] for e in body["extensions"]],
                         ["os-simple-tenant-usage",
                          "os-instance_usage_audit_log", "os-hello"])
        one = self.get("/v2.1/extensions/os-hello", token="u:p").json
        self.assertEqual(one["extension"]["name"], "Hello")
        self.assertEqual(set(one["extension"]), {
            "name", "alias", "description", "namespace", "updated",
            "links"})
        self.assertFault(self.get("/v2.1/extensions/os-nope",
                                  token="u:p"), 404)

    def test_resource_attribute_action_and_version_range(self):
        self.assertEqual(self.get("/v2.1/os-hello", token="u:p").json,
                         {"hello": "world"})
        self.assertFault(self.get("/v2.1/os-hello", token="u:p",
                                  version="2.60"), 404)
        server_id = self.create_server(token="u:p")
        shown = self.get(f"/v2.1/servers/{server_id}", token="u:p",
                         version="2.10").json["server"]
        self.assertEqual(shown["hello:launch_index"], 0)
        detail = self.get("/v2.1/servers/detail", token="u:p",
                          version="2.10").json["servers"]
        self.assertEqual(detail[0]["hello:launch_index"], 0)
        newer = self.get(f"/v2.1/servers/{server_id}", token="u:p",
                         version="2.60").json["server"]
        self.assertNotIn("hello:launch_index", newer)
        waved = self.post(f"/v2.1/servers/{server_id}/action",
                          {"wave": None}, token="u:p", version="2.10")
        self.assertEqual(waved.code, 202, waved)
        self.assertEqual(waved.json, {"waved": server_id})
        # another project's server stays invisible to the action
        self.assertFault(self.post(f"/v2.1/servers/{server_id}/action",
                                   {"wave": None}, token="v:q",
                                   version="2.10"), 404)
        self.assertTrue(self.services.policy.rules_text["hello:index"])

    def test_config_chooses(self):
        conf = self.conf.with_overrides(api={"extensions": ["os-hello"]})
        loaded = extensions.load(conf, self.services.policy,
                                 [Hello(), *extensions.discover()])
        self.assertEqual([e.alias for e in loaded], ["os-hello"])


class Greeter(extensions.ExtensionBase):
    name = "Greeter"
    alias = "os-greeter"

    def config_options(self):
        from twisted_compute.conf.opts import int_opt, str_opt
        return {"greeter": [str_opt("greeting", "hello", "What to say"),
                            int_opt("times", 1, "How often", min=1)]}


class Clashing(extensions.ExtensionBase):
    name = "Clashing"
    alias = "os-clashing"

    def config_options(self):
        from twisted_compute.conf.opts import int_opt
        return {"api": [int_opt("max_limit", 5, "Mine")]}


class ExtensionOptionTests(ExtensionsTestCase):
    def conf_from(self, text):
        from twisted_compute import config
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write(text)
        return config.load([path])

    def test_declared_options_read_from_the_config_files(self):
        conf = self.conf_from("[greeter]\ngreeting = bonjour\n")
        loaded = extensions.load(conf, self.services.policy, [Greeter()])
        values = loaded.options["os-greeter"]
        self.assertEqual(values.greeter.greeting, "bonjour")
        self.assertEqual(values.greeter.times, 1)

    def test_bad_value_skips_the_extension(self):
        conf = self.conf_from("[greeter]\ntimes = 0\n")
        loaded = extensions.load(conf, self.services.policy, [Greeter()])
        self.assertEqual(list(loaded), [])
        text = " ".join(str(e.get("error", "")) for e in self.logged)
        self.assertIn("[greeter] times", text)

    def test_project_options_cannot_be_redeclared(self):
        loaded = extensions.load(self.conf, self.services.policy,
                                 [Clashing(), Greeter()])
        self.assertEqual([e.alias for e in loaded], ["os-greeter"])
        self.assertEqual(self.conf.api.max_limit, 1000)

    def test_wired_into_services(self):
        from twisted_compute.api import wiring
        conf = self.conf_from("[greeter]\ngreeting = hi\n")
        self.patch(extensions, "discover", lambda: [Greeter()])
        services = wiring.build(conf, self.reactor, self.db)
        self.assertEqual(
            services.extension_options["os-greeter"].greeter.greeting, "hi")


class UsageTests(ExtensionsTestCase):
    def launched(self, server_id, when, ended=None):
        values = {"launched_at": when, "vm_state": "active"}
        if ended is not None:
            values.update(terminated_at=ended, deleted_at=ended)
        self.set_state(server_id, **values)

    def test_tenant_usage(self):
        day = datetime.datetime(2026, 1, 1)
        one = self.create_server(token="u:p")
        two = self.create_server(token="u:p")
        other = self.create_server(token="v:q")
        self.launched(one, day)
        self.launched(two, day, ended=day + datetime.timedelta(hours=2))
        self.launched(other, day)
        query = "start=2026-01-01T00:00:00&end=2026-01-01T10:00:00"
        mine = self.get(f"/v2.1/os-simple-tenant-usage/p?{query}",
                        token="u:p").json["tenant_usage"]
        self.assertEqual(mine["total_hours"], 12.0)
        self.assertEqual(mine["total_memory_mb_usage"], 512 * 12.0)
        self.assertEqual(mine["total_vcpus_usage"], 12.0)
        self.assertEqual(sorted(u["hours"] for u in mine["server_usages"]),
                         [2.0, 10.0])
        states = {u["instance_id"]: u["state"]
                  for u in mine["server_usages"]}
        self.assertEqual(states[two], "terminated")
        self.assertFault(self.get(f"/v2.1/os-simple-tenant-usage/q?"
                                  f"{query}", token="u:p"), 403)
        self.assertFault(self.get(f"/v2.1/os-simple-tenant-usage?{query}",
                                  token="u:p"), 403)
        every = self.get(f"/v2.1/os-simple-tenant-usage?{query}&"
                         "detailed=1", token="admin:admin").json
        totals = {u["tenant_id"]: u["total_hours"]
                  for u in every["tenant_usages"]}
        self.assertEqual(totals, {"p": 12.0, "q": 10.0})
        self.assertIn("server_usages", every["tenant_usages"][0])
        plain = self.get(f"/v2.1/os-simple-tenant-usage?{query}",
                         token="admin:admin").json
        self.assertNotIn("server_usages", plain["tenant_usages"][0])
        self.assertFault(self.get(
            "/v2.1/os-simple-tenant-usage?start=2026-02-01T00:00:00&"
            "end=2026-01-01T00:00:00", token="admin:admin"), 400)

    def test_pagination_from_2_40(self):
        day = datetime.datetime(2026, 1, 1)
        servers = [self.create_server(token="u:p") for _ in range(3)]
        for server_id in servers:
            self.launched(server_id, day)
        query = "start=2026-01-01T00:00:00&end=2026-01-01T01:00:00"
        page = self.get(f"/v2.1/os-simple-tenant-usage/p?{query}&limit=2",
                        token="u:p", version="2.40").json
        self.assertEqual(len(page["tenant_usage"]["server_usages"]), 2)
        self.assertIn("marker=", page["tenant_usage_links"][0]["href"])
        marker = page["tenant_usage"]["server_usages"][-1]["instance_id"]
        rest = self.get(f"/v2.1/os-simple-tenant-usage/p?{query}&limit=2&"
                        f"marker={marker}", token="u:p",
                        version="2.40").json
        self.assertEqual(len(rest["tenant_usage"]["server_usages"]), 1)
        # before 2.40, no pagination
        old = self.get(f"/v2.1/os-simple-tenant-usage/p?{query}&limit=2",
                       token="u:p").json
        self.assertEqual(len(old["tenant_usage"]["server_usages"]), 3)

    def test_usage_audit_log(self):
        body = self.get("/v2.1/os-instance_usage_audit_log",
                        token="admin:admin").json[
            "instance_usage_audit_logs"]
        self.assertEqual(body["total_errors"], 0)
        self.assertIn("hosts done", body["overall_status"])
        one = self.get("/v2.1/os-instance_usage_audit_log/"
                       "2026-03-15%2010:00:00", token="admin:admin").json
        self.assertEqual(one["instance_usage_audit_log"][
            "period_beginning"], "2026-02-01 00:00:00")
        self.assertFault(self.get("/v2.1/os-instance_usage_audit_log",
                                  token="u:p"), 403)
