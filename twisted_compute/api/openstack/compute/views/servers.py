"""Server bodies, per microversion.

A :class:`ServerViews` is built once per request (links, version flags,
what the caller may see) and then renders each instance cheaply: a page
of 100 servers costs no more than 100 dict builds.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twisted_compute.api.openstack import common
from twisted_compute.objects import vm_states
from twisted_compute.objects.instance import Instance

#: Statuses whose ``progress`` is shown.
_PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE",
                      "VERIFY_RESIZE", "MIGRATING")
#: Statuses whose fault is shown.
_FAULT_STATUSES = ("ERROR", "DELETED")


def host_id(instance: Instance) -> str:
    """An obfuscated host id, unique per project (Nova's hostId)."""
    if not instance.host:
        return ""
    return hashlib.sha224(
        (str(instance.project_id) + instance.host).encode()).hexdigest()


def image_properties(instance: Instance) -> dict[str, str]:
    """The image's properties as stored with the instance at create
    (system metadata ``image_<key>``, ``base_image_ref`` included as
    Nova shows it; 2.98), as strings like Nova's system metadata."""
    return {key[6:]: (value if isinstance(value, str) else
                      ("" if value is None else str(value)))
            for key, value in (instance.system_metadata or {}).items()
            if key.startswith("image_")}


def scheduler_hints(instance: Instance) -> dict[str, list[str]]:
    """The hints given at create (2.100), each value a list of strings
    as Nova's request spec holds them."""
    hints = (instance.request_spec or {}).get("scheduler_hints") or {}
    return {key: [str(v) for v in value] if isinstance(value, list)
            else [value if isinstance(value, str) else str(value)]
            for key, value in hints.items()}


def pinned_availability_zone(instance: Instance) -> str | None:
    """The zone the server is pinned to (2.96): the one asked for at
    create, or set by PUT from 2.104; None when unpinned."""
    return (instance.request_spec or {}).get("availability_zone") or None


def addresses(instance: Instance, extended: bool = True) -> dict:
    """``{network: [{"addr", "version", ...}]}`` from the stored network
    info; without ``extended`` only addr and version (``/ips``)."""
    result: dict[str, list[dict[str, Any]]] = {}
    for network, entries in (instance.addresses or {}).items():
        items = []
        for entry in entries or ():
            if extended:
                items.append(dict(entry))
            else:
                items.append({"addr": entry.get("addr"),
                              "version": entry.get("version")})
        result[network] = items
    return result


class ServerViews:
    def __init__(self, request, *, is_admin: bool,
                 extended_attributes: bool, host_status: bool,
                 flavor_extra_specs: bool,
                 instance_name_template: str = "instance-%08x"):
        self.request = request
        self.is_admin = is_admin
        app = common.application_url(request)
        bookmark = common.bookmark_url(request)
        self._self = f"{app}/servers/"
        self._bookmark = f"{bookmark}/servers/"
        self._flavors = f"{bookmark}/flavors/"
        self._images = f"{bookmark}/images/"
        self.template = instance_name_template
        at = request.api_version.matches
        self.v23 = at("2.3")
        self.v29 = at("2.9")
        self.v216 = at("2.16")
        self.v219 = at("2.19")
        self.v226 = at("2.26")
        self.v247 = at("2.47")
        self.v263 = at("2.63")
        self.v271 = at("2.71")
        self.v273 = at("2.73")
        self.v290 = at("2.90")
        self.v296 = at("2.96")
        self.v298 = at("2.98")
        self.v2100 = at("2.100")
        self.extended_attributes = extended_attributes
        self.host_status = host_status and self.v216
        self.flavor_extra_specs = flavor_extra_specs
        self._host_ids: dict[tuple[Any, str], str] = {}

    # --- pieces -------------------------------------------------------

    def links(self, uuid: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": self._self + uuid},
                {"rel": "bookmark", "href": self._bookmark + uuid}]

    def basic(self, instance: Instance) -> dict[str, Any]:
        return {"id": instance.uuid, "name": instance.display_name,
                "links": self.links(instance.uuid)}

    def flavor(self, instance: Instance) -> dict[str, Any]:
        snapshot = instance.flavor or {}
        if self.v247:
            body = {
                "vcpus": snapshot.get("vcpus", instance.vcpus),
                "ram": snapshot.get("memory_mb", instance.memory_mb),
                "disk": snapshot.get("root_gb", instance.root_gb),
                "ephemeral": snapshot.get("ephemeral_gb",
                                          instance.ephemeral_gb),
                "swap": snapshot.get("swap", 0),
                "original_name": snapshot.get("name", ""),
            }
            if self.flavor_extra_specs:
                body["extra_specs"] = dict(snapshot.get("extra_specs")
                                           or {})
            return body
        flavorid = str(snapshot.get("flavorid", instance.instance_type_id))
        return {"id": flavorid,
                "links": [{"rel": "bookmark",
                           "href": self._flavors + flavorid}]}

    def image(self, instance: Instance):
        if not instance.image_ref:
            return ""
        body = {"id": instance.image_ref,
                "links": [{"rel": "bookmark",
                           "href": self._images + instance.image_ref}]}
        if self.v298:
            body["properties"] = image_properties(instance)
        return body

    def fault(self, instance: Instance) -> dict[str, Any] | None:
        fault = instance.fault
        if fault is None:
            return None
        body = {"code": fault.code, "created": common.isotime(
            fault.created_at), "message": fault.message}
        if fault.details and (self.is_admin or fault.code != 500):
            body["details"] = fault.details
        return body

    # --- whole servers ------------------------------------------------

    def show(self, instance: Instance, *, full: bool = True,
             server_groups: list[str] | None = None,
             host_statuses: dict[str, str] | None = None) -> dict:
        """A server as ``GET /servers/{id}`` shows it (``full``), or as
        ``PUT`` before 2.75 showed it (not ``full``).  ``server_groups``
        is shown from 2.71 when given (show and update, not lists)."""
        # A list renders this once per server: the pieces are inlined and
        # the host id is hashed once per host (see the module docstring).
        # The keys' order is the body's: keep it.
        uuid = instance.uuid
        vm_state = instance.vm_state
        task_state = instance.task_state
        status = vm_states.status_from_state(vm_state, task_state)
        sysmeta = instance.system_metadata or {}
        host = instance.host
        image_ref = instance.image_ref
        created_at = instance.created_at
        isotime = common.isotime
        server: dict[str, Any] = {
            "id": uuid,
            "name": instance.display_name,
            "status": status,
            "tenant_id": instance.project_id or "",
            "user_id": instance.user_id or "",
            "metadata": dict(instance.metadata),
            "hostId": self._host_id(instance) if host else "",
            "image": self.image(instance) if image_ref else "",
            "flavor": self.flavor(instance),
            "created": isotime(created_at),
            "updated": isotime(instance.updated_at or created_at),
            "addresses": addresses(instance),
            "accessIPv4": instance.access_ip_v4 or "",
            "accessIPv6": instance.access_ip_v6 or "",
            "links": [{"rel": "self", "href": self._self + uuid},
                      {"rel": "bookmark", "href": self._bookmark + uuid}],
            "OS-DCF:diskConfig": sysmeta.get("disk_config") or "MANUAL",
        }
        if status in _PROGRESS_STATUSES:
            server["progress"] = instance.progress or 0
        if self.v29:
            server["locked"] = bool(instance.locked)
        if self.v273:
            server["locked_reason"] = instance.locked_reason
        if self.v219:
            server["description"] = instance.display_description
        if self.v226:
            server["tags"] = list(instance.tags)
        if self.v263:
            server["trusted_image_certificates"] = sysmeta.get(
                "trusted_image_certificates") or None
        if self.v271 and server_groups is not None:
            server["server_groups"] = list(server_groups)
        if status in _FAULT_STATUSES:
            fault = self.fault(instance)
            if fault is not None:
                server["fault"] = fault
        if not full:
            return server
        isotime_usec = common.isotime_usec
        server["OS-EXT-AZ:availability_zone"] = \
            instance.availability_zone or ""
        server["config_drive"] = instance.config_drive or ""
        server["key_name"] = instance.key_name
        server["OS-SRV-USG:launched_at"] = isotime_usec(
            instance.launched_at)
        server["OS-SRV-USG:terminated_at"] = isotime_usec(
            instance.terminated_at)
        server["OS-EXT-STS:task_state"] = task_state
        server["OS-EXT-STS:vm_state"] = vm_state
        server["OS-EXT-STS:power_state"] = instance.power_state
        server["os-extended-volumes:volumes_attached"] = []
        if instance.security_groups:
            server["security_groups"] = [
                {"name": g["name"] if isinstance(g, dict) else str(g)}
                for g in instance.security_groups]
        if self.v290:
            server["OS-EXT-SRV-ATTR:hostname"] = instance.hostname
        if self.v296:
            server["pinned_availability_zone"] = \
                pinned_availability_zone(instance)
        if self.v2100:
            server["scheduler_hints"] = scheduler_hints(instance)
        if self.host_status:
            if not host:
                server["host_status"] = ""
            else:
                server["host_status"] = (host_statuses or {}).get(
                    host, "UNKNOWN")
        if self.extended_attributes:
            server["OS-EXT-SRV-ATTR:host"] = host
            server["OS-EXT-SRV-ATTR:hypervisor_hostname"] = instance.node
            server["OS-EXT-SRV-ATTR:instance_name"] = \
                instance.instance_name(self.template)
            if self.v23:
                server.update({
                    "OS-EXT-SRV-ATTR:reservation_id":
                        instance.reservation_id,
                    "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
                    "OS-EXT-SRV-ATTR:kernel_id": instance.kernel_id or "",
                    "OS-EXT-SRV-ATTR:ramdisk_id":
                        instance.ramdisk_id or "",
                    "OS-EXT-SRV-ATTR:hostname": instance.hostname,
                    "OS-EXT-SRV-ATTR:root_device_name": sysmeta.get(
                        "root_device_name"),
                    "OS-EXT-SRV-ATTR:user_data": instance.user_data,
                })
        return server

    def _host_id(self, instance: Instance) -> str:
        """:func:`host_id`, hashed once per (project, host) per request."""
        key = (instance.project_id, instance.host)
        value = self._host_ids.get(key)
        if value is None:
            value = self._host_ids[key] = host_id(instance)
        return value


def create_response(views: ServerViews, instance: Instance,
                    admin_pass: str | None) -> dict:
    """What ``POST /servers`` answers for one server."""
    sysmeta = instance.system_metadata or {}
    server = {
        "id": instance.uuid,
        "links": views.links(instance.uuid),
        "OS-DCF:diskConfig": sysmeta.get("disk_config") or "MANUAL",
        "security_groups": [
            {"name": g["name"] if isinstance(g, dict) else str(g)}
            for g in instance.security_groups] or [{"name": "default"}],
    }
    if admin_pass is not None:
        server["adminPass"] = admin_pass
    return {"server": server}


def action(request, action, *, show_events: bool, show_host: bool,
           show_traceback: bool) -> dict:
    """An instance action (with its events when ``show_events``)."""
    body = {
        "action": action.action,
        "instance_uuid": action.instance_uuid,
        "request_id": action.request_id,
        "user_id": action.user_id,
        "project_id": action.project_id,
        "start_time": common.isotime_usec(action.start_time),
        "message": action.message,
    }
    if common.is_at_least(request, "2.58"):
        body["updated_at"] = common.isotime_usec(action.updated_at)
    return body


def action_event(request, event, *, project_id: str, show_host: bool,
                 show_traceback: bool, show_details: bool = False) -> dict:
    """One event; from 2.84 with ``details`` (the fault message of a
    failed event, null otherwise) when ``show_details``."""
    body = {
        "event": event.event,
        "start_time": common.isotime_usec(event.start_time),
        "finish_time": common.isotime_usec(event.finish_time),
        "result": event.result,
    }
    if show_traceback:
        body["traceback"] = event.traceback
    if common.is_at_least(request, "2.62"):
        body["hostId"] = hashlib.sha224(
            (str(project_id) + (event.host or "")).encode()).hexdigest() \
            if event.host else ""
        if show_host:
            body["host"] = event.host
    if show_details and common.is_at_least(request, "2.84"):
        body["details"] = event.details
    return body
