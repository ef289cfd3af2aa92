"""The image API's version list, as Glance shows it (and as keystoneauth's
version discovery reads it): ``GET /`` answers 300 Multiple Choices,
``GET /versions`` 200."""

from __future__ import annotations

from twisted.web.resource import Resource

from twisted_compute.api.openstack.common import host_url, json_response

#: Glance minor versions this API speaks (v2.0 .. v2.9, like Glance
#: without multiple stores); the last is CURRENT.
MINOR_VERSIONS = range(0, 10)


def versions_body(request, conf) -> dict:
    base = conf.api.glance_link_prefix.rstrip("/") or host_url(request)
    versions = []
    for minor in reversed(MINOR_VERSIONS):
        versions.append({
            "id": f"v2.{minor}",
            "status": "CURRENT" if minor == MINOR_VERSIONS[-1]
            else "SUPPORTED",
            "links": [{"rel": "self", "href": f"{base}/v2/"}],
        })
    return {"versions": versions}


class VersionsResource(Resource):
    """``/`` and ``/versions`` of the image endpoint (no auth needed)."""

    isLeaf = True

    def __init__(self, services):
        super().__init__()
        self._conf = services.conf

    def render_GET(self, request):
        explicit = bool(request.prepath) and \
            request.prepath[-1] == b"versions"
        return json_response(request, versions_body(request, self._conf),
                             200 if explicit else 300)

    def render_HEAD(self, request):
        return b""
