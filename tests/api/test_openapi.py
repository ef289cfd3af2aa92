"""The OpenAPI documents: every route the controllers serve is documented
and every documented route exists; the request schemas in a document are
the very schemas the controllers validate with; the documents are served
at ``/openapi.json`` (no auth) and printed by ``compute-manage``."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from jsonschema import Draft202012Validator
from twisted.trial.unittest import SynchronousTestCase

from tests.api.test_image import ImageAPITestCase
from tests.api.test_servers_base import ServersTestCase
from twisted_compute.api import openapi
from twisted_compute.api.image.images import ImagesController
from twisted_compute.api.openapi import compute as compute_table
from twisted_compute.api.openapi import image as image_table
from twisted_compute.api.openapi.jsonschema import to_openapi
from twisted_compute.api.openapi.table import at
from twisted_compute.api.openstack import api_version, common, extensions
from twisted_compute.api.openstack.api_version import APIVersion
from twisted_compute.api.openstack.compute import CONTROLLERS, _load
from twisted_compute.cmd import manage

#: Methods the framework answers by itself (werkzeug adds HEAD to GET).
_IMPLICIT = {"HEAD", "OPTIONS"}


def _routes(apps) -> set[tuple[str, str]]:
    routes = set()
    for app in apps:
        for rule in app.url_map.iter_rules():
            for method in rule.methods - _IMPLICIT:
                routes.add((method, rule.rule))
    return routes


def compute_routes() -> set[tuple[str, str]]:
    """The built-in controllers' routes and those of the extensions
    installed (the two shipped ones: os-simple-tenant-usage and
    os-instance_usage_audit_log)."""
    apps = [_load(spec).app for spec in CONTROLLERS]
    for extension in extensions.discover():
        apps.extend(cls.app for cls in extension.controllers())
    return _routes(apps)


def image_routes() -> set[tuple[str, str]]:
    return _routes([ImagesController.app])


def all_versions():
    minor = api_version.MIN_VERSION.minor
    while minor <= api_version.MAX_VERSION.minor:
        yield APIVersion(f"2.{minor}")
        minor += 1


class RouteTests(SynchronousTestCase):
    """The tables against the Klein apps' ``url_map``."""

    def check(self, served, operations):
        documented = {(op.method, op.path) for op in operations}
        self.assertEqual(len(documented), len(operations),
                         "an operation is in the table twice")
        self.assertEqual(sorted(served - documented), [],
                         "routes served but not documented")
        self.assertEqual(sorted(documented - served), [],
                         "routes documented but not served")

    def test_compute_routes(self):
        self.check(compute_routes(), openapi.operations("compute"))

    def test_image_routes(self):
        self.check(image_routes(), image_table.operations())

    def test_operation_ids_unique(self):
        for table in (compute_table, image_table):
            ids = [op.operation_id for op in table.operations()]
            self.assertEqual(len(ids), len(set(ids)))

    def test_every_route_in_some_microversion(self):
        """Each compute route is in the document of at least one
        microversion, at the path and method the table says."""
        seen = set()
        for version in all_versions():
            document = openapi.document("compute", version)
            for path, methods in document["paths"].items():
                for method in methods:
                    seen.add((method.upper(), path))
        expected = {(m, p.replace("<", "{").replace(">", "}"))
                    for m, p in compute_routes()}
        self.assertEqual(seen, expected)

    def test_version_ranges(self):
        """Routes that come and go with the microversion do so in the
        document: tags from 2.26, the image proxy until 2.35, os-hosts
        until 2.42, the flavor update from 2.55, topology from 2.78."""
        def paths(version):
            return {(m.upper(), p) for p, ms in openapi.document(
                "compute", version)["paths"].items() for m in ms}
        self.assertNotIn(("GET", "/servers/{server_id}/tags"),
                         paths("2.25"))
        self.assertIn(("GET", "/servers/{server_id}/tags"), paths("2.26"))
        self.assertIn(("GET", "/images"), paths("2.35"))
        self.assertNotIn(("GET", "/images"), paths("2.36"))
        self.assertIn(("GET", "/os-hosts"), paths("2.42"))
        self.assertNotIn(("GET", "/os-hosts"), paths("2.43"))
        self.assertNotIn(("PUT", "/flavors/{flavor_id}"), paths("2.54"))
        self.assertIn(("PUT", "/flavors/{flavor_id}"), paths("2.55"))
        self.assertIn(("GET", "/servers/{server_id}/topology"),
                      paths("2.78"))
        self.assertNotIn(("GET", "/servers/{server_id}/topology"),
                         paths("2.77"))


class DocumentTests(SynchronousTestCase):

    def test_default_is_the_maximum(self):
        """The default document follows api_version.MAX_VERSION."""
        document = openapi.document("compute")
        self.assertEqual(document["info"]["version"],
                         str(api_version.MAX_VERSION))
        self.assertEqual(document["openapi"], "3.1.0")
        self.patch(api_version, "MAX_VERSION", APIVersion("2.60"))
        self.assertEqual(openapi.document("compute")["info"]["version"],
                         "2.60")

    def test_bad_microversion(self):
        from twisted_compute import exception
        self.assertRaises(exception.InvalidAPIVersionString,
                          openapi.document, "compute", "2.x")
        self.assertRaises(exception.VersionNotAcceptable,
                          openapi.document, "compute", "3.0")

    def test_schemas_are_valid_2020_12(self):
        """Every body schema of every document is a valid JSON Schema
        2020-12 (what OpenAPI 3.1 uses)."""
        documents = [openapi.document("image")] + [
            openapi.document("compute", v) for v in ("2.1", "2.35", "2.64",
                                                     None)]
        count = 0
        for document in documents:
            for methods in document["paths"].values():
                for op in methods.values():
                    bodies = [c["schema"] for r in op["responses"].values()
                              for c in r.get("content", {}).values()]
                    bodies += [c["schema"] for c in op.get(
                        "requestBody", {}).get("content", {}).values()]
                    for schema in bodies:
                        Draft202012Validator.check_schema(schema)
                        count += 1
        self.assertGreater(count, 300)

    def test_request_bodies_are_the_tables_schemas(self):
        """The document's request body of each operation is the table's
        schema (the controllers' object) converted, at every
        microversion."""
        for version in all_versions():
            document = openapi.document("compute", version)
            for op in compute_table.operations():
                if not op.served_at(version):
                    continue
                entry = document["paths"][op.openapi_path][
                    op.method.lower()]
                schema = at(op.request, version)
                if schema is None:
                    self.assertNotIn("requestBody", entry)
                    continue
                self.assertEqual(
                    entry["requestBody"]["content"]["application/json"][
                        "schema"], to_openapi(schema),
                    f"{op.method} {op.path} at {version}")

    def test_faults(self):
        document = openapi.document("compute")
        fault = document["components"]["schemas"]["fault404"]
        validator = Draft202012Validator(fault)
        self.assertTrue(validator.is_valid(
            {"itemNotFound": {"code": 404, "message": "gone"}}))
        self.assertFalse(validator.is_valid(
            {"badRequest": {"code": 400, "message": "no"}}))
        self.assertFalse(validator.is_valid(
            {"itemNotFound": {"code": 400, "message": "no"}}))

    def test_links(self):
        """POST /servers links to GET /servers/{id} (stateful runs)."""
        document = openapi.document("compute")
        links = document["paths"]["/servers"]["post"]["responses"]["202"][
            "links"]
        self.assertEqual(links["GetServer"], {
            "operationId": "showServer",
            "parameters": {"server_id": "$response.body#/server/id"}})
        ids = {op["operationId"] for ms in document["paths"].values()
               for op in ms.values()}
        for methods in document["paths"].values():
            for op in methods.values():
                for response in op["responses"].values():
                    for link in response.get("links", {}).values():
                        self.assertIn(link["operationId"], ids)


class ConvertTests(SynchronousTestCase):

    def test_exclusive_minimum(self):
        self.assertEqual(
            to_openapi({"type": "number", "minimum": 0,
                        "exclusiveMinimum": True}),
            {"type": "number", "exclusiveMinimum": 0})
        self.assertEqual(
            to_openapi({"minimum": 0, "exclusiveMinimum": False}),
            {"minimum": 0})

    def test_tuple_items(self):
        self.assertEqual(
            to_openapi({"type": "array", "items": [{"type": "string"}],
                        "additionalItems": False}),
            {"type": "array", "prefixItems": [{"type": "string"}],
             "items": False})

    def test_same_instances_valid(self):
        """The server group policies (a Draft 4 tuple) accept and refuse
        the same bodies after conversion."""
        from jsonschema import Draft4Validator
        from twisted_compute.api.openstack.compute.schemas import \
            server_groups
        draft4 = Draft4Validator(server_groups.create)
        converted = Draft202012Validator(to_openapi(server_groups.create))
        for body in ({"server_group": {"name": "g",
                                       "policies": ["affinity"]}},
                     {"server_group": {"name": "g",
                                       "policies": ["affinity", "x"]}},
                     {"server_group": {"name": "g", "policies": []}},
                     {"server_group": {"name": "g", "policies": ["bad"]}}):
            self.assertEqual(draft4.is_valid(body),
                             converted.is_valid(body), body)

    def test_input_unchanged(self):
        schema = {"items": [{"minimum": 1, "exclusiveMinimum": True}]}
        copy = json.loads(json.dumps(schema))
        to_openapi(schema)
        self.assertEqual(schema, copy)


class _Stop(Exception):
    """Raised by the validate spy: the request need go no further."""


#: Microversions at which some request schema changes (and their
#: neighbours), and the ends of the range.
_EDGES = ("2.1", "2.2", "2.9", "2.10", "2.11", "2.14", "2.15", "2.16",
          "2.17", "2.18", "2.19", "2.31", "2.32", "2.35", "2.36", "2.37",
          "2.41", "2.42", "2.43", "2.51", "2.52", "2.53", "2.54", "2.55",
          "2.56", "2.57", "2.62", "2.63", "2.64", "2.66", "2.67", "2.72",
          "2.73", "2.74", "2.75")


def edge_versions():
    versions = {APIVersion(v) for v in _EDGES} | {api_version.MAX_VERSION}
    return sorted(v for v in versions if v <= api_version.MAX_VERSION)


class ValidatorIdentityTests(ServersTestCase):
    """Each documented request schema *is* the object the controller
    hands to ``common.validate`` (a spy records it), at each microversion
    where schemas change."""

    def setUp(self):
        super().setUp()
        self.server_id = self.create_server()
        self.seen = []

        def spy(body, schema):
            self.seen.append(schema)
            raise _Stop()
        self.patch(common, "validate", spy)

    def validated(self, op, version, body, path_values):
        path = op.path
        for name in op.path_params():
            path = path.replace(f"<{name}>", path_values.get(name, "1"))
        del self.seen[:]
        self.request(op.method, "/v2.1" + path, body=body,
                     token="admin:admin", version=str(version))
        self.flushLoggedErrors(_Stop)
        self.assertEqual(len(self.seen), 1,
                         f"{op.method} {op.path} at {version} did not "
                         f"validate its body")
        return self.seen[0]

    def test_compute(self):
        checked = 0
        path_values = {"server_id": self.server_id,
                       # before 2.53 the path names the action
                       "service_id": "enable"}
        for op in compute_table.operations():
            if op.request is None:
                continue
            for version in edge_versions():
                if not op.served_at(version):
                    continue
                choices = getattr(op.request, "choices", None)
                if choices is not None:
                    for name, schema in choices(version).items():
                        got = self.validated(op, version, {name: {}},
                                             path_values)
                        self.assertIs(got, schema,
                                      f"{op.path} {name} at {version}")
                        checked += 1
                    continue
                expected = at(op.request, version)
                got = self.validated(op, version, {}, path_values)
                if op.path == "/os-services/<service_id>" and \
                        not version.matches("2.53"):
                    # before 2.53: one of the two action bodies
                    self.assertIn(got, expected["oneOf"])
                else:
                    self.assertIs(got, expected,
                                  f"{op.method} {op.path} at {version}")
                checked += 1
        self.assertGreater(checked, 300)

    def test_force_down_schema(self):
        op = next(o for o in compute_table.operations()
                  if o.operation_id == "updateService")
        got = self.validated(op, APIVersion("2.11"), {},
                             {"service_id": "force-down"})
        from twisted_compute.api.openstack.compute.schemas import services
        self.assertIs(got, services.force_down)


class ImageValidatorTests(ImageAPITestCase):

    def test_create_schema(self):
        """POST /v2/images validates with the documented schema (a new
        copy per call: compared by value)."""
        seen = []

        def spy(body, schema):
            seen.append(schema)
            raise _Stop()
        # (ImageAPITestCase.patch sends an HTTP PATCH)
        SynchronousTestCase.patch(self, common, "validate", spy)
        self.post("/v2/images", {"name": "x"}, token="alice:p1")
        self.flushLoggedErrors(_Stop)
        op = next(o for o in image_table.operations()
                  if o.operation_id == "createImageV2")
        self.assertEqual(seen, [at(op.request, None)])


class ServedTests(ServersTestCase):

    def test_compute_document(self):
        response = self.get("/openapi.json", token=None)
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.header("content-type"),
                         "application/json")
        self.assertEqual(response.json, json.loads(json.dumps(
            openapi.document("compute"))))

    def test_microversion(self):
        response = self.get("/openapi.json?microversion=2.10", token=None)
        self.assertEqual(response.json["info"]["version"], "2.10")
        self.assertIn("/os-hosts", response.json["paths"])

    def test_bad_microversion(self):
        self.assertFault(self.get("/openapi.json?microversion=2.x",
                                  token=None), 400)
        self.assertFault(self.get("/openapi.json?microversion=2.999",
                                  token=None), 406)

    def test_describes_what_is_answered(self):
        """A few answers of the real API against the document's
        response schemas (schemathesis does it at scale)."""
        document = openapi.document("compute", "2.79")
        paths = document["paths"]

        def check(path, response, status="200"):
            schema = paths[path]["get"]["responses"][status]["content"][
                "application/json"]["schema"]
            Draft202012Validator(schema).validate(response.json)

        check("/servers/{server_id}", self.get(
            f"/v2.1/servers/{self.server_id_for_check()}", version="2.79"))
        check("/servers/detail", self.get("/v2.1/servers/detail",
                                          version="2.79"))
        check("/flavors/detail", self.get("/v2.1/flavors/detail",
                                          version="2.79"))
        check("/limits", self.get("/v2.1/limits", version="2.79"))
        check("/os-quota-sets/{project_id}/detail", self.get(
            "/v2.1/os-quota-sets/admin/detail", version="2.79"))
        old = openapi.document("compute", "2.1")["paths"]
        Draft202012Validator(old["/servers/{server_id}"]["get"][
            "responses"]["200"]["content"]["application/json"][
            "schema"]).validate(self.get(
                f"/v2.1/servers/{self.server_id_for_check()}").json)

    def server_id_for_check(self):
        if not hasattr(self, "_server"):
            self._server = self.create_server(token="admin:admin")
        return self._server


class ImageServedTests(ImageAPITestCase):

    def test_image_document(self):
        response = self.get("/openapi.json", token=None)
        self.assertEqual(response.code, 200, response)
        self.assertEqual(response.json["servers"], [{"url": "/v2"}])
        self.assertIn("/images/{image_id}", response.json["paths"])


class ManageTests(SynchronousTestCase):

    def run_manage(self, *argv) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = manage.main(list(argv))
        return code, out.getvalue()

    def test_prints_document(self):
        code, out = self.run_manage("api", "openapi", "--microversion",
                                    "2.42")
        self.assertEqual(code, 0)
        document = json.loads(out)
        self.assertEqual(document["info"]["version"], "2.42")
        self.assertIn("/os-hosts", document["paths"])

    def test_image(self):
        code, out = self.run_manage("api", "openapi", "--api", "image")
        self.assertEqual(code, 0)
        self.assertIn("/images", json.loads(out)["paths"])

    def test_bad_version(self):
        code, out = self.run_manage("api", "openapi", "--microversion",
                                    "x")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")


class ExtensionRouteTests(SynchronousTestCase):
    def test_shipped_extensions_documented(self):
        paths = openapi.document("compute", "2.40")["paths"]
        self.assertIn("/os-simple-tenant-usage/{tenant_id}", paths)
        self.assertIn("/os-instance_usage_audit_log/{before}", paths)
        self.assertIn("/extensions/{alias}", paths)
        params = {p["name"] for p in paths["/os-simple-tenant-usage"][
            "get"].get("parameters", [])}
        self.assertIn("marker", params)
        before = openapi.document("compute", "2.39")["paths"]
        params = {p["name"] for p in before["/os-simple-tenant-usage"][
            "get"].get("parameters", [])}
        self.assertNotIn("marker", params)
