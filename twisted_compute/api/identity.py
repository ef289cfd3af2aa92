"""The Keystone v3 version document, served at ``/identity`` on the compute
port.

With ``noauth`` there is no Keystone, but keystoneauth (and so the
``openstack`` CLI) still runs version discovery on the identity endpoint
before some commands.  This answers it the way Keystone does:
``GET /identity`` lists the versions (300 Multiple Choices) and
``GET /identity/v3`` describes v3 (200).  No token API is served.

The CLI also looks projects up before ``quota show|set PROJECT`` and
``flavor set --project P`` (``GET /identity/v3/projects/{id}``, then
``GET /identity/v3/projects?name=...``).  Under ``noauth`` projects are
whatever a token names, so there is no store to consult: these lookups
echo the project asked for (id = name = the value given, in domain
``default``).  Under ``keystone`` the real Keystone answers them and
these paths are 404 here.
"""

from __future__ import annotations

from twisted.web.resource import IResource, Resource

from twisted_compute.api import faults
from twisted_compute.api.openstack.common import (
    host_url, json_response, query_one)

VERSION_ID = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json"}]
#: The one domain noauth projects live in (Keystone's default domain).
DEFAULT_DOMAIN = "default"
DEFAULT_DOMAIN_NAME = "Default"


def _base(request) -> str:
    """The URL of ``/identity`` as the client reached it."""
    path = "/".join(s.decode("utf-8", "replace") for s in request.prepath
                    if s)
    return host_url(request) + ("/" + path if path else "")


def version_v3(base: str) -> dict:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [dict(m) for m in MEDIA_TYPES],
    }


def project(base: str, project_id: str) -> dict:
    """A Keystone v3 project whose id and name are ``project_id``."""
    return {
        "id": project_id,
        "name": project_id,
        "domain_id": DEFAULT_DOMAIN,
        "parent_id": DEFAULT_DOMAIN,
        "description": "",
        "enabled": True,
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}/v3/projects/{project_id}"},
    }


def domain(base: str) -> dict:
    """The default domain, the only one there is under noauth."""
    return {
        "id": DEFAULT_DOMAIN,
        "name": DEFAULT_DOMAIN_NAME,
        "description": "The default domain",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}/v3/domains/{DEFAULT_DOMAIN}"},
    }


def _list_links(base: str, collection: str) -> dict:
    return {"self": f"{base}/v3/{collection}", "previous": None,
            "next": None}


def _not_found(request):
    return faults.write_fault(request, 404,
                              "The resource could not be found.")


class IdentityVersions(Resource):
    """``/identity`` (300, every version) and ``/identity/v3`` (200);
    with ``echo_projects`` (noauth) also ``/identity/v3/projects/{id}``,
    ``/identity/v3/projects?name=N`` and the default domain
    (``/identity/v3/domains/default``, ``/identity/v3/domains?name=``)."""

    isLeaf = True

    def __init__(self, echo_projects: bool = False):
        super().__init__()
        self.echo_projects = echo_projects

    def render_GET(self, request):
        segments = [s.decode("utf-8", "replace")
                    for s in request.postpath if s]
        base = _base(request)
        if not segments:
            body = {"versions": {"values": [version_v3(base)]}}
            return json_response(request, body, 300)
        if segments == ["v3"]:
            return json_response(request, {"version": version_v3(base)})
        if self.echo_projects and segments[:2] == ["v3", "projects"]:
            return self._projects(request, base, segments[2:])
        if self.echo_projects and segments[:2] == ["v3", "domains"]:
            return self._domains(request, base, segments[2:])
        return _not_found(request)

    def _domains(self, request, base: str, rest: list[str]):
        if rest == [DEFAULT_DOMAIN]:
            return json_response(request, {"domain": domain(base)})
        if rest:
            return _not_found(request)
        name = query_one(request, "name")
        found = []
        if name is None or name.lower() == DEFAULT_DOMAIN:
            found = [domain(base)]
        return json_response(request, {
            "domains": found, "links": _list_links(base, "domains")})

    def _projects(self, request, base: str, rest: list[str]):
        # A domain other than ours holds no project.
        in_domain = query_one(request, "domain_id") in (None, DEFAULT_DOMAIN)
        if len(rest) == 1 and in_domain:
            return json_response(request,
                                 {"project": project(base, rest[0])})
        if rest:
            return _not_found(request)
        # A list: only a lookup by name can be answered (there is no
        # store to enumerate).
        name = query_one(request, "name")
        found = []
        if name and in_domain:
            found = [project(base, name)]
        return json_response(request, {
            "projects": found, "links": _list_links(base, "projects")})

    def render_HEAD(self, request):
        self.render_GET(request)
        return b""


def app_factory(global_conf, **local_conf) -> IResource:
    """``paste.app_factory`` of ``/identity``."""
    conf = global_conf.get("conf")
    noauth = conf is not None and conf.api.auth_strategy in (
        "noauth", "noauth2")
    return IdentityVersions(echo_projects=noauth)
