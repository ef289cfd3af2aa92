"""The compute API v2.1 application: the router and its controllers."""

from __future__ import annotations

import importlib
from typing import Any

from twisted.web.resource import IResource, getChildForRequest
from twisted.web.resource import Resource

from twisted_compute import exception
from twisted_compute.api import faults
from twisted_compute.api.openstack import api_version
from twisted_compute.api.openstack.compute import absent_services
from twisted_compute.api.openstack.common import get_context

#: Every controller of the API, as ``module:Class``; each declares the
#: router keys (``collections``) it serves.
CONTROLLERS = [
    "flavors:FlavorsController",
    "flavor_extra_specs:FlavorExtraSpecsController",
    "flavor_access:FlavorAccessController",
    "keypairs:KeypairsController",
    "limits:LimitsController",
    "quota_sets:QuotaSetsController",
    "availability_zone:AvailabilityZoneController",
    "services:ServicesController",
    "hypervisors:HypervisorsController",
    "server_groups:ServerGroupsController",
    "servers:ServersController",
    "server_actions:ServerActionsController",
    "server_metadata:ServerMetadataController",
    "server_tags:ServerTagsController",
    "instance_actions:InstanceActionsController",
    "ips:IPsController",
    "server_topology:ServerTopologyController",
    "server_password:ServerPasswordController",
    "aggregates:AggregatesController",
    "images:ImagesController",
    "hosts:HostsController",
    "remote_consoles:RemoteConsolesController",
    "remote_consoles:ConsoleAuthTokensController",
    "server_diagnostics:ServerDiagnosticsController",
    "quota_classes:QuotaClassSetsController",
    "server_external_events:ServerExternalEventsController",
    "absent_services:VolumeAttachmentsController",
    "absent_services:SharesController",
    "extension_info:ExtensionInfoController",
    "migrations:MigrationsController",
    "migrations:ServerMigrationsController",
]


def _load(spec: str):
    module_name, _, class_name = spec.partition(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)


class APIRouterV21(Resource):
    """Serves ``/v2.1``: negotiates the microversion, strips an optional
    project id from the URL, and dispatches to the controller that owns
    the collection (``/servers``) or sub-collection
    (``/servers/{id}/metadata``).  Controllers route full paths below the
    API root themselves (Klein)."""

    isLeaf = True

    def __init__(self, services, versions_resource: IResource):
        super().__init__()
        self._versions = versions_resource
        self._link_prefix = services.conf.api.compute_link_prefix.rstrip("/")
        self._routes: dict[tuple[str, ...], IResource] = {}
        for spec in CONTROLLERS:
            controller = _load(spec)(services)
            resource = controller.resource()
            for key in controller.collections:
                self._routes[tuple(key)] = resource
        # Extensions' resources (Twisted plugins): never a built-in's.
        self._extension_routes: dict[tuple[str, ...], Any] = {}
        for extension in services.extensions:
            for cls in extension.controllers():
                controller = cls(services)
                resource = controller.resource()
                for key in controller.collections:
                    if tuple(key) not in self._routes:
                        self._routes[tuple(key)] = resource
                        self._extension_routes[tuple(key)] = extension

    def render(self, request):
        # The legacy v2 compatible API (/v2) ignores and echoes no
        # microversion: always 2.1 (its wrapper removed the headers).
        legacy_v2 = getattr(request, "legacy_v2", False)
        try:
            version = api_version.from_request(request)
        except (exception.VersionNotAcceptable,
                exception.InvalidAPIVersionString) as exc:
            api_version.set_response_headers(request,
                                             api_version.MIN_VERSION)
            return faults.write_fault(request, exc.code,
                                      exc.format_message())
        request.api_version = version
        if not legacy_v2:
            api_version.set_response_headers(request, version)

        version_segment = request.prepath[-1:] if request.prepath else []
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if segments and segments[-1] == "":
            segments.pop()
        request.url_project_id = None
        if segments and segments[0] not in absent_services.REMOVED and \
                not any(key[0] == segments[0] for key in self._routes):
            # /v2.1/{project_id}/...: allowed when it is the caller's own.
            project_id = segments[0]
            context = get_context(request)
            if project_id != context.project_id:
                # Only a path that a resource serves below a project id
                # has a project id in it: anything else is not found.
                if self._route(segments[1:]) is None:
                    return faults.write_fault(
                        request, 404, "The resource could not be found.")
                return faults.write_fault(
                    request, 400,
                    f"Malformed request URL: URL's project_id "
                    f"'{project_id}' doesn't match Context's project_id "
                    f"'{context.project_id}'")
            request.url_project_id = project_id
            request.prepath.append(request.postpath.pop(0))
            segments.pop(0)
        request.api_root = list(request.prepath)
        request.bookmark_root = [s for s in request.prepath
                                 if s not in version_segment]
        if self._link_prefix:
            request.link_prefix = self._link_prefix + "/" + "/".join(
                s.decode() for s in request.prepath if s)
        if not segments:
            return getChildForRequest(self._versions, request).render(
                request)
        gone = absent_services.removed(segments[0])
        if gone is not None:
            return faults.write_fault(request, 410, gone)
        resource = self._route(segments)
        if resource is None or not self._extension_serves(segments,
                                                          request):
            return faults.write_fault(request, 404,
                                      "The resource could not be found.")
        return resource.render(request)

    def _extension_serves(self, segments, request) -> bool:
        """False when an extension's resource is asked for outside the
        microversions it serves."""
        keys = [(segments[0], segments[2])] if len(segments) >= 3 else []
        keys.append((segments[0],))
        for key in keys:
            if key in self._routes:
                extension = self._extension_routes.get(key)
                if extension is None:
                    return True
                from twisted_compute.api.openstack import extensions
                return extensions._serves(extension, request)
        return True

    def _route(self, segments: list[str]) -> IResource | None:
        """The controller serving ``segments`` (below the API root and
        project id), or None."""
        if not segments:
            return None
        resource = None
        if len(segments) >= 3:
            resource = self._routes.get((segments[0], segments[2]))
        if resource is None:
            resource = self._routes.get((segments[0],))
        return resource


def app_factory(global_conf, **local_conf) -> IResource:
    """``paste.app_factory`` of the v2.1 API (and of the legacy v2
    compatible API, whose root shows the v2.0 document)."""
    from twisted_compute.api.openstack.compute.versions import \
        VersionV21Resource
    services = global_conf["services"]
    return APIRouterV21(services, VersionV21Resource(services))
