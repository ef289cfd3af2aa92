"""The Keystone v3 version document, served at ``/identity`` on the compute
port.

With ``noauth`` there is no Keystone, but keystoneauth (and so the
``openstack`` CLI) still runs version discovery on the identity endpoint
before some commands.  This answers it the way Keystone does:
``GET /identity`` lists the versions (300 Multiple Choices) and
``GET /identity/v3`` describes v3 (200).

Under ``noauth`` it also issues tokens (``POST /identity/v3/auth/tokens``
with the ``password`` or ``token`` method), so that a clouds.yaml with
``auth_type: password`` works as against a real cloud: the token is the
noauth ``user:project`` of the user and project asked for (any password
is accepted: noauth checks nothing), with the roles noauth gives (admin
for the user ``admin``) and a catalog of this deployment's compute and
image endpoints.  Commands that need the caller's project
(``openstack quota show``, ``usage show``) then find it in the token.

The CLI also looks projects up before ``quota show|set PROJECT`` and
``flavor set --project P`` (``GET /identity/v3/projects/{id}``, then
``GET /identity/v3/projects?name=...``).  Under ``noauth`` projects are
whatever a token names, so there is no store to consult: these lookups
echo the project asked for (id = name = the value given, in domain
``default``).  Under ``keystone`` the real Keystone answers them and
these paths are 404 here.
"""

from __future__ import annotations

import datetime
import json

from twisted.web.resource import IResource, Resource

from twisted_compute.api import faults
from twisted_compute.api.openstack.common import (
    host_url, json_response, query_one)

#: How long an issued noauth token says it is valid (it never expires:
#: noauth checks nothing; keystoneauth re-authenticates after this).
TOKEN_LIFETIME = datetime.timedelta(hours=12)

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

    def __init__(self, echo_projects: bool = False,
                 image_url: str | None = None):
        super().__init__()
        self.echo_projects = echo_projects
        self.image_url = image_url

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

    def render_POST(self, request):
        segments = [s.decode("utf-8", "replace")
                    for s in request.postpath if s]
        if not self.echo_projects or segments != ["v3", "auth", "tokens"]:
            return _not_found(request)
        try:
            body = json.loads(request.content.read() or b"null")
            user, project_id = _scope(body)
        except (ValueError, TypeError, KeyError, AttributeError):
            return faults.write_fault(
                request, 400, "Expecting an auth body with identity "
                "methods password or token")
        base = _base(request)
        now = self.clock_now()
        roles = ["admin", "member", "reader"] if user == "admin" else \
            ["member", "reader"]
        token = {
            "methods": body["auth"]["identity"]["methods"],
            "user": {"id": user, "name": user, "password_expires_at": None,
                     "domain": {"id": DEFAULT_DOMAIN,
                                "name": DEFAULT_DOMAIN_NAME}},
            "project": {"id": project_id, "name": project_id,
                        "domain": {"id": DEFAULT_DOMAIN,
                                   "name": DEFAULT_DOMAIN_NAME}},
            "roles": [{"id": name, "name": name} for name in roles],
            "is_domain": False,
            "issued_at": _iso(now),
            "expires_at": _iso(now + TOKEN_LIFETIME),
            "audit_ids": [],
            "catalog": self.catalog(base),
        }
        request.setHeader(b"X-Subject-Token",
                          f"{user}:{project_id}".encode("utf-8"))
        return json_response(request, {"token": token}, 201)

    def clock_now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)

    def catalog(self, base: str) -> list[dict]:
        """Keystone's catalog of this deployment: identity (here),
        compute (this port's ``/v2.1``) and the image API."""
        compute_base = base.rsplit("/identity", 1)[0]
        entries = [("identity", "keystone", base),
                   ("compute", "nova", compute_base + "/v2.1")]
        if self.image_url:
            entries.append(("image", "glance", self.image_url))
        return [{
            "type": kind, "name": name, "id": name,
            "endpoints": [{"id": f"{name}-{interface}", "interface":
                           interface, "region": "RegionOne",
                           "region_id": "RegionOne", "url": url}
                          for interface in ("public", "internal")],
        } for kind, name, url in entries]

    def render_HEAD(self, request):
        self.render_GET(request)
        return b""


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _name(entity: dict) -> str:
    value = entity.get("name") or entity.get("id")
    if not isinstance(value, str) or not value or ":" in value:
        raise ValueError("no name")
    return value


def _scope(body: dict) -> tuple[str, str]:
    """The user and project a token request names (noauth: the token is
    ``user:project``); a request without a project scope gets the
    user's name as its project."""
    auth = body["auth"]
    identity = auth["identity"]
    methods = identity["methods"]
    if "password" in methods:
        user = _name(identity["password"]["user"])
        project_id = None
    elif "token" in methods:
        user, _, project_id = identity["token"]["id"].partition(":")
        if not user:
            raise ValueError("no user")
    else:
        raise ValueError("no method")
    scope = auth.get("scope") or {}
    if isinstance(scope, dict) and "project" in scope:
        project_id = _name(scope["project"])
    return user, project_id or user


def app_factory(global_conf, **local_conf) -> IResource:
    """``paste.app_factory`` of ``/identity``."""
    conf = global_conf.get("conf")
    noauth = conf is not None and conf.api.auth_strategy in (
        "noauth", "noauth2")
    image_url = None
    if conf is not None:
        from twisted_compute import clouds_yaml
        image_url = clouds_yaml.image_url(conf)
    return IdentityVersions(echo_projects=noauth, image_url=image_url)
