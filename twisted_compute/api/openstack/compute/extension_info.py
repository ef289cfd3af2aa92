"""``/extensions`` and ``/extensions/{alias}``: the loaded Compute API
extensions (Twisted plugins), as Nova still lists its own."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common, extensions
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)


class ExtensionNotFound(exception.NotFound):
    msg_fmt = "Extension %(alias)s could not be found."


class ExtensionInfoController(Controller):
    app = make_app()
    collections = (("extensions",),)

    @route(app, "/extensions", ["GET"])
    async def index(self, request):
        common.get_context(request)
        return json_response(request, {"extensions": [
            extensions.view(e) for e in self.services.extensions]})

    @route(app, "/extensions/<alias>", ["GET"])
    async def show(self, request, alias):
        common.get_context(request)
        for extension in self.services.extensions:
            if extension.alias == alias:
                return json_response(request,
                                     {"extension": extensions.view(extension)})
        raise ExtensionNotFound(alias=alias)
