"""OpenAPI 3.1 documents of the Compute API (``/v2.1``) and the image API
(``/v2``), generated from the route tables in :mod:`.compute` and
:mod:`.image`: request bodies are the very schemas the controllers
validate with (converted from Draft 4 to JSON Schema 2020-12), response
bodies the shapes the views build, per microversion.

Served without authentication at ``GET /openapi.json`` on the compute
listener (``?microversion=X.Y``, default: the maximum) and on the image
listener; printed by ``compute-manage api openapi [--api image]
[--microversion X.Y]``.

The document of one microversion describes the API as served at it:
send ``OpenStack-API-Version: compute X.Y`` with every request.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource

from twisted_compute import exception
from twisted_compute.api import faults
from twisted_compute.api.openapi import compute, image
from twisted_compute.api.openapi.jsonschema import (
    STRING, obj, to_openapi)
from twisted_compute.api.openapi.table import OMIT, Operation, at
from twisted_compute.api.openstack import api_version
from twisted_compute.api.openstack.api_version import APIVersion

#: The last microversion whose response bodies this package describes
#: key by key.  Above it (microversions being added elsewhere) objects
#: are documented as open: their keys may change.
DESCRIBED_UNTIL = APIVersion("2.79")

APIS = ("compute", "image")


def fault_schema(code: int) -> dict:
    """The Nova fault body of ``code``: ``{"itemNotFound": {"code": 404,
    "message": "..."}}``."""
    name = faults.FAULT_NAMES.get(code, "computeFault")
    return obj({name: obj({"code": {"const": code}, "message": STRING,
                           "details": STRING}, optional=("details",))})


def _open(schema: Any) -> Any:
    """``schema`` with every object open (no required keys, any extra
    key): for microversions whose bodies are not described key by key."""
    if isinstance(schema, list):
        return [_open(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key == "required":
            continue
        if key == "additionalProperties" and value is False:
            result[key] = True
            continue
        if key in ("properties", "patternProperties"):
            result[key] = {k: _open(v) for k, v in value.items()}
        else:
            result[key] = _open(value)
    return result


def _parameters(op: Operation, version: APIVersion) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "string", "minLength": 1}}
              for name in op.path_params()]
    for param in op.query:
        if not version.matches(param.min_version, param.max_version):
            continue
        entry = {"name": param.name, "in": param.location,
                 "required": param.required, "schema": param.schema}
        if param.description:
            entry["description"] = param.description
        params.append(entry)
    return params


def _response(status: int, schema: Any, links: dict | None) -> dict:
    response: dict[str, Any] = {"description": f"{status}"}
    if schema == "binary":
        response["content"] = {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}
    elif schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    if links:
        response["links"] = links
    return response


def _links_at(links: dict | None, ids: set[str]) -> dict | None:
    """The links whose target operation is in this document."""
    if not links:
        return links
    return {name: link for name, link in links.items()
            if link["operationId"] in ids}


def _operation(op: Operation, version: APIVersion, common_errors,
               described: bool, ids: set[str]) -> dict:
    responses: dict[str, Any] = {}
    for status, spec in sorted(op.responses.items()):
        schema = at(spec, version)
        if schema is OMIT or (isinstance(schema, str) and schema == OMIT):
            continue
        if schema is not None and schema != "binary" and not described:
            schema = _open(schema)
        responses[str(status)] = _response(
            status, schema, _links_at(op.links.get(status), ids))
    for code in sorted(set(common_errors) | set(op.errors)):
        responses.setdefault(str(code), {
            "description": faults.FAULT_NAMES.get(code, "computeFault"),
            "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/fault{code}"}}}})
    entry: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "responses": responses,
    }
    if op.tag:
        entry["tags"] = [op.tag]
    params = _parameters(op, version)
    if params:
        entry["parameters"] = params
    body = at(op.request, version)
    if body is not None:
        entry["requestBody"] = {"required": True, "content": {
            op.media_type: {"schema": to_openapi(body)}}}
    return entry


def parse_version(text: str | None) -> APIVersion:
    """The microversion a document is asked for (None: the maximum);
    InvalidAPIVersionString (400) or VersionNotAcceptable (406)."""
    if text is None or text.strip().lower() in ("", "latest"):
        return api_version.MAX_VERSION
    version = APIVersion(text)
    if not api_version.MIN_VERSION <= version <= api_version.MAX_VERSION:
        raise exception.VersionNotAcceptable(
            version=text, min=api_version.MIN_VERSION,
            max=api_version.MAX_VERSION)
    return version


def extension_operations() -> list[Operation]:
    """The operations of the Compute API extensions installed (Twisted
    plugins), each as its ``openapi_operations()`` gives them."""
    from twisted_compute.api.openstack import extensions
    found = []
    for extension in extensions.discover():
        describe = getattr(extension, "openapi_operations", None)
        if describe is not None:
            found.extend(describe())
    return found


def operations(api: str) -> list[Operation]:
    if api == "compute":
        return compute.operations() + extension_operations()
    if api == "image":
        return image.operations()
    raise ValueError(f"unknown API {api!r}; known: {', '.join(APIS)}")


def document(api: str = "compute",
             version: APIVersion | str | None = None) -> dict:
    """The OpenAPI 3.1 document of ``api`` (``compute`` at microversion
    ``version``, default the maximum; or ``image``)."""
    if not isinstance(version, APIVersion):
        version = parse_version(version)
    if api == "compute":
        common_errors = compute.COMMON_ERRORS
        info = {
            "title": "twisted-compute Compute API",
            "version": str(version),
            "description": (
                "Nova's Compute API v2.1 at microversion "
                f"{version} (served: {api_version.MIN_VERSION} to "
                f"{api_version.MAX_VERSION}). Send "
                f"`OpenStack-API-Version: compute {version}` with every "
                "request; other microversions have their own document "
                "(`/openapi.json?microversion=X.Y`)."),
        }
        servers = [{"url": "/v2.1"}]
    else:
        common_errors = image.COMMON_ERRORS
        info = {"title": "twisted-compute image API", "version": "2.9",
                "description": "The subset of Glance's image API v2 that "
                               "OpenStack clients and the compute side use."}
        servers = [{"url": "/v2"}]
    described = api != "compute" or version <= DESCRIBED_UNTIL
    paths: dict[str, dict] = {}
    codes: set[int] = set(common_errors)
    served = [op for op in operations(api)
              if api != "compute" or op.served_at(version)]
    ids = {op.operation_id for op in served}
    for op in served:
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = \
            _operation(op, version, common_errors, described, ids)
        codes.update(op.errors)
    return {
        "openapi": "3.1.0",
        "info": info,
        "servers": servers,
        "security": [{"token": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"token": {
                "type": "apiKey", "in": "header", "name": "X-Auth-Token",
                "description": "A Keystone token (or, with auth_strategy "
                               "noauth, `user:project`)"}},
            "schemas": {f"fault{code}": fault_schema(code)
                        for code in sorted(codes)},
        },
    }


# --- serving ----------------------------------------------------------------

class OpenAPIResource(Resource):
    """``GET /openapi.json`` of one API (no auth needed).  The compute
    document takes ``?microversion=X.Y``."""

    isLeaf = True

    def __init__(self, api: str):
        super().__init__()
        self.api = api
        self._cache: dict[str, bytes] = {}

    def render_GET(self, request):
        text = None
        values = (request.args or {}).get(b"microversion")
        if values:
            text = values[-1].decode("utf-8", "replace")
        try:
            version = parse_version(text) if self.api == "compute" \
                else None
        except (exception.InvalidAPIVersionString,
                exception.VersionNotAcceptable) as exc:
            return faults.write_fault(request, exc.code,
                                      exc.format_message())
        key = str(version)
        body = self._cache.get(key)
        if body is None:
            body = json.dumps(document(self.api, version),
                              separators=(",", ":")).encode()
            self._cache[key] = body
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"application/json")
        return body

    def render_HEAD(self, request):
        self.render_GET(request)
        return b""


def compute_factory(global_conf, **local_conf) -> Resource:
    """``paste.app_factory`` of the compute listener's ``/openapi.json``."""
    return OpenAPIResource("compute")


def image_factory(global_conf, **local_conf) -> Resource:
    """``paste.app_factory`` of the image listener's ``/openapi.json``."""
    return OpenAPIResource("image")
