"""The image API's version list, as Glance shows it (and as keystoneauth's
version discovery reads it): ``GET /`` answers 300 Multiple Choices,
``GET /versions`` 200."""

from __future__ import annotations

from twisted_compute.api.openstack.common import host_url
from twisted_compute.api.versions import VersionsResource

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


def versions_status(request) -> int:
    """``/versions`` answers 200, ``/`` 300 Multiple Choices."""
    explicit = bool(request.prepath) and request.prepath[-1] == b"versions"
    return 200 if explicit else 300


def versions_resource(conf) -> VersionsResource:
    """``/`` and ``/versions`` of the image endpoint (no auth needed)."""
    return VersionsResource(lambda request: versions_body(request, conf),
                            versions_status)
