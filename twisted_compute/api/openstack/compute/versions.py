"""The version documents: ``GET /`` (all versions) and ``GET /v2.1/``."""

from __future__ import annotations

from twisted.web.resource import Resource

from twisted_compute.api.openstack import api_version
from twisted_compute.api.openstack.common import host_url, json_response
from twisted_compute.api.versions import VersionsResource

_UPDATED = "2013-07-23T11:33:21Z"


def _v21(base: str) -> dict:
    return {
        "id": "v2.1",
        "links": [{"href": f"{base}/v2.1/", "rel": "self"}],
        "status": "CURRENT",
        "version": str(api_version.MAX_VERSION),
        "min_version": str(api_version.MIN_VERSION),
        "updated": _UPDATED,
    }


def _base(request, conf) -> str:
    prefix = conf.api.compute_link_prefix.rstrip("/")
    return prefix or host_url(request)


class VersionV21Resource(Resource):
    """``GET /v2.1/``: the v2.1 version document."""

    isLeaf = True

    def __init__(self, services):
        super().__init__()
        self._conf = services.conf

    def render_GET(self, request):
        version = _v21(_base(request, self._conf))
        version["links"].append({"href": "http://docs.openstack.org/",
                                 "rel": "describedby", "type": "text/html"})
        version["media-types"] = [{
            "base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2.1"}]
        return json_response(request, {"version": version})


def versions_document(request, conf) -> dict:
    """``GET /``: the versions this endpoint serves."""
    return {"versions": [_v21(_base(request, conf))]}


def versions_factory(global_conf, **local_conf):
    """``paste.app_factory`` of ``GET /`` (no auth needed)."""
    conf = global_conf["services"].conf
    return VersionsResource(lambda request: versions_document(request, conf))


def version_v21_factory(global_conf, **local_conf):
    """``paste.app_factory`` of ``GET /v2.1`` (no auth needed)."""
    return VersionV21Resource(global_conf["services"])
