"""The version documents: ``GET /`` (all versions), ``GET /v2/`` (the
deprecated v2.0, Nova's legacy v2 compatible API) and ``GET /v2.1/``.

As Nova, ``GET /`` lists v2.0 first, then v2.1, and ``/v2`` serves the
v2.1 code at microversion 2.1 (see
:mod:`twisted_compute.api.middleware.legacy_v2`).
"""

from __future__ import annotations

from twisted.web.resource import Resource

from twisted_compute.api.openstack import api_version
from twisted_compute.api.openstack.common import host_url, json_response
from twisted_compute.api.versions import VersionsResource

#: The documents per version id: (path, status, media type version,
#: updated); v2.0 has no microversions ("" for both).
VERSIONS = {
    "v2.0": ("v2", "DEPRECATED", "2", "2025-07-04T12:00:00Z"),
    "v2.1": ("v2.1", "CURRENT", "2.1", "2013-07-23T11:33:21Z"),
}


def _summary(version_id: str, base: str) -> dict:
    path, status, _media, updated = VERSIONS[version_id]
    microversions = version_id == "v2.1"
    return {
        "id": version_id,
        "links": [{"href": f"{base}/{path}/", "rel": "self"}],
        "status": status,
        "version": str(api_version.MAX_VERSION) if microversions else "",
        "min_version": str(api_version.MIN_VERSION) if microversions
        else "",
        "updated": updated,
    }


def version_document(version_id: str, base: str) -> dict:
    """``GET /v2/`` or ``GET /v2.1/``: one version, with its links and
    media types."""
    version = _summary(version_id, base)
    version["links"].append({"href": "http://docs.openstack.org/",
                             "rel": "describedby", "type": "text/html"})
    version["media-types"] = [{
        "base": "application/json",
        "type": "application/vnd.openstack.compute+json;version="
                + VERSIONS[version_id][2]}]
    return {"version": version}


def _base(request, conf) -> str:
    prefix = conf.api.compute_link_prefix.rstrip("/")
    return prefix or host_url(request)


class VersionV21Resource(Resource):
    """``GET /v2.1/`` (or ``/v2/`` for ``version_id = "v2.0"``, and for
    any request of the legacy v2 compatible API): one version document."""

    isLeaf = True

    def __init__(self, services, version_id: str = "v2.1"):
        super().__init__()
        self._conf = services.conf
        self._version_id = version_id

    def render_GET(self, request):
        version_id = "v2.0" if getattr(request, "legacy_v2", False) \
            else self._version_id
        return json_response(request, version_document(
            version_id, _base(request, self._conf)))

    def render_HEAD(self, request):
        return b""


def versions_document(request, conf) -> dict:
    """``GET /``: the versions this endpoint serves, v2.0 first."""
    base = _base(request, conf)
    return {"versions": [_summary(v, base) for v in VERSIONS]}


def versions_factory(global_conf, **local_conf):
    """``paste.app_factory`` of ``GET /`` (no auth needed)."""
    conf = global_conf["services"].conf
    return VersionsResource(lambda request: versions_document(request, conf))


def version_v21_factory(global_conf, **local_conf):
    """``paste.app_factory`` of ``GET /v2.1`` (no auth needed)."""
    return VersionV21Resource(global_conf["services"])


def version_v2_factory(global_conf, **local_conf):
    """``paste.app_factory`` of ``GET /v2`` (no auth needed)."""
    return VersionV21Resource(global_conf["services"], "v2.0")
