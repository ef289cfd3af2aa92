"""The version list of an API endpoint (``GET /``), one resource for
every API: each gives the document it shows and the status it answers."""

from __future__ import annotations

from typing import Callable

from twisted.web.resource import Resource

from twisted_compute.api.openstack.common import json_response


def _ok(request) -> int:
    return 200


class VersionsResource(Resource):
    """The versions an endpoint serves (no auth needed):
    ``document(request)`` is the JSON body, ``status(request)`` the HTTP
    status (200 unless the API says otherwise)."""

    isLeaf = True

    def __init__(self, document: Callable[..., dict],
                 status: Callable[..., int] = _ok):
        super().__init__()
        self._document = document
        self._status = status

    def render_GET(self, request):
        return json_response(request, self._document(request),
                             self._status(request))

    def render_HEAD(self, request):
        return b""
