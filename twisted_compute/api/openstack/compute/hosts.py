"""``/os-hosts`` (admin, until microversion 2.42 and not found after, as
in Nova): list the hosts of the services, show a compute host's
resources, enable or disable it, and the host power actions (which no
driver of this project performs: 501, as Nova answers for libvirt)."""

from __future__ import annotations

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.objects.service import COMPUTE_BINARY

_POLICY = "os_compute_api:os-hosts:"

#: The last microversion that serves ``os-hosts``.
MAX_VERSION = "2.42"

_UPDATE = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["enable", "disable",
                                              "Enable", "Disable",
                                              "ENABLE", "DISABLE"]},
        "maintenance_mode": {"type": "string",
                             "enum": ["enable", "disable", "Enable",
                                      "Disable", "ENABLE", "DISABLE"]},
    },
    "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
    "additionalProperties": False,
}

_POWER_ACTIONS = {"reboot": "reboot", "shutdown": "shutdown",
                  "startup": "start"}


class HostsController(Controller):
    app = make_app()
    collections = (("os-hosts",),)

    def _authorize(self, request, action: str):
        if not request.api_version.matches(None, MAX_VERSION):
            raise exception.NotFound("The resource could not be found.")
        context = common.get_context(request)
        self.services.policy.authorize(context, _POLICY + action)
        return context

    async def _compute_service(self, host: str):
        try:
            return await self.db.services.get_by_host_binary(
                self.conf, host, COMPUTE_BINARY)
        except exception.HostBinaryNotFound:
            raise exception.NotFound(
                f"Compute host {host} could not be found.") from None

    @route(app, "/os-hosts", ["GET"], query=None)
    async def index(self, request):
        self._authorize(request, "list")
        zone = common.query_one(request, "zone")
        services = await self.db.services.get_all(self.conf)
        hosts = [{"host_name": s.host, "service": s.topic or s.binary,
                  "zone": s.availability_zone}
                 for s in services if not s.disabled
                 and (zone is None or s.availability_zone == zone)]
        return json_response(request, {"hosts": hosts})

    @route(app, "/os-hosts/<host>", ["GET"], query=None)
    async def show(self, request, host):
        self._authorize(request, "show")
        await self._compute_service(host)
        nodes, _ = await self.db.services.nodes_and_servers(self.conf)
        nodes = [n for n in nodes if n.host == host]
        usage = await self.db.services.host_usage(host)

        def resource(project, cpu, memory_mb, disk_gb):
            return {"resource": {"host": host, "project": project,
                                 "cpu": cpu, "memory_mb": memory_mb,
                                 "disk_gb": disk_gb}}

        resources = [
            resource("(total)", sum(n.vcpus for n in nodes),
                     sum(n.memory_mb for n in nodes),
                     sum(n.local_gb for n in nodes)),
            resource("(used_now)", sum(n.vcpus_used for n in nodes),
                     sum(n.memory_mb_used for n in nodes),
                     sum(n.local_gb_used for n in nodes)),
            resource("(used_max)",
                     sum(u["cpu"] for u in usage.values()),
                     sum(u["memory_mb"] for u in usage.values()),
                     sum(u["disk_gb"] for u in usage.values())),
        ]
        resources += [resource(project, u["cpu"], u["memory_mb"],
                               u["disk_gb"])
                      for project, u in usage.items()]
        return json_response(request, {"host": resources})

    @route(app, "/os-hosts/<host>", ["PUT"])
    async def update(self, request, host):
        self._authorize(request, "update")
        body = common.read_body(request)
        common.validate(body, _UPDATE)
        service = await self._compute_service(host)
        if "maintenance_mode" in body:
            raise exception.NotImplementedYet(
                "Virt driver does not implement host maintenance mode.")
        enable = body["status"].lower() == "enable"
        await self.db.services.update(self.conf, service.id, {
            "disabled": not enable,
            "disabled_reason": None if enable else "Disabled through "
                                                   "os-hosts"})
        return json_response(request, {
            "host": host, "status": "enabled" if enable else "disabled"})

    @route(app, "/os-hosts/<host>/<action>", ["GET"], query=None)
    async def power_action(self, request, host, action):
        if action not in _POWER_ACTIONS:
            self._authorize(request, "show")
            raise exception.NotFound("The resource could not be found.")
        self._authorize(request, _POWER_ACTIONS[action])
        await self._compute_service(host)
        raise exception.NotImplementedYet(
            "Virt driver does not implement host power management.")
