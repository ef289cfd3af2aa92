"""``/servers``: list, detail, show, create (with multiple create),
update, delete."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)
from twisted_compute.api.openstack.compute.schemas import servers as schema
from twisted_compute.api.openstack.compute.schemas import to_bool
from twisted_compute.api.openstack.compute.views import servers as views
from twisted_compute.compute import vm_states
from twisted_compute.db import quotas as quotas_db

#: Query parameters non-admins may filter by, with the microversion that
#: introduced each (others are silently dropped for them, as Nova does).
USER_FILTERS = {
    "reservation_id": None, "name": None, "status": None, "image": None,
    "flavor": None, "ip": None, "changes-since": None, "all_tenants": None,
    "ip6": "2.5", "tags": "2.26", "tags-any": "2.26", "not-tags": "2.26",
    "not-tags-any": "2.26", "changes-before": "2.66", "locked": "2.73",
}

#: Every query parameter Nova's schema knows (an unknown one is a 400 from
#: 2.75 on).
KNOWN_PARAMS = set(USER_FILTERS) | {
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref",
    "kernel_id", "ramdisk_id", "hostname", "key_name", "power_state",
    "vm_state", "task_state", "host", "node", "launched_at",
    "terminated_at", "availability_zone", "display_name", "description",
    "display_description", "locked_by", "uuid", "root_device_name",
    "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "soft_deleted", "deleted",
    "created_at", "block_device_mapping", "services", "metadata",
    "system_metadata", "info_cache", "security_groups", "pci_devices",
    "limit", "marker",
}

#: Admin filters compared with ``=`` on a column of the same name.
ADMIN_EXACT = ("user_id", "uuid", "host", "node", "hostname", "key_name",
               "availability_zone", "launch_index", "access_ip_v4",
               "access_ip_v6", "kernel_id", "ramdisk_id", "progress",
               "locked_by", "config_drive", "power_state", "vm_state",
               "task_state", "image_ref")

VALID_SORT_KEYS = (
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone",
    "config_drive", "created_at", "display_description", "display_name",
    "host", "hostname", "image_ref", "instance_type_id", "kernel_id",
    "key_name", "launch_index", "launched_at", "locked_by", "node",
    "power_state", "progress", "project_id", "ramdisk_id",
    "root_device_name", "task_state", "terminated_at", "updated_at",
    "user_id", "uuid", "vm_state")
IGNORED_SORT_KEYS = (
    "architecture", "cell_name", "cleaned", "default_ephemeral_device",
    "default_swap_device", "deleted", "deleted_at", "disable_terminate",
    "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on",
    "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
    "shutdown_terminate", "user_data", "vcpus", "vm_mode")
#: Sort keys without a column here (accepted, not used).
_UNSORTABLE = ("auto_disk_config", "root_device_name")


def make_views(services, request, context) -> views.ServerViews:
    """The per-request server view builder (what this caller sees)."""
    policy = services.policy
    return views.ServerViews(
        request, is_admin=context.is_admin,
        extended_attributes=policy.allowed(
            context, "os_compute_api:os-extended-server-attributes"),
        host_status=policy.allowed(
            context, "os_compute_api:servers:show:host_status"),
        flavor_extra_specs=policy.allowed(
            context, "os_compute_api:os-flavor-extra-specs:index"),
        instance_name_template=services.conf.instance_name_template)


def instance_target(instance) -> dict[str, str]:
    return {"project_id": instance.project_id, "user_id": instance.user_id}


async def show_body(services, request, context, instance,
                    full: bool = True) -> dict:
    """``{"server": ...}`` as show (or pre-2.75 update) renders it."""
    builder = make_views(services, request, context)
    groups = None
    if common.is_at_least(request, "2.71"):
        groups = await services.compute_api.server_groups_of(instance.uuid)
    statuses = None
    if full and builder.host_status and instance.host:
        statuses = await services.compute_api.host_statuses(
            [instance.host])
    return {"server": builder.show(instance, full=full,
                                   server_groups=groups,
                                   host_statuses=statuses)}


def _loose_bool(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on", "t", "y")


class ServersController(Controller):
    app = make_app()
    collections = (("servers",),)

    @property
    def compute_api(self):
        return self.services.compute_api

    # --- list ---------------------------------------------------------

    def _search(self, request, context, detail: bool):
        """(filters, sort_keys, sort_dirs, limit, marker) of a list, or
        None when it can match nothing."""
        params = common.query(request)
        if common.is_at_least(request, "2.75"):
            unknown = sorted(set(params) - KNOWN_PARAMS)
            if unknown:
                raise exception.ValidationError(
                    field="query parameters",
                    detail="Additional properties are not allowed "
                    f"({', '.join(repr(u) for u in unknown)} "
                    f"{'was' if len(unknown) == 1 else 'were'} unexpected)")
        opts = {k: v[-1] for k, v in params.items() if v}
        all_filters = self.services.policy.allowed(
            context, "os_compute_api:servers:allow_all_filters")
        if not all_filters:
            opts = {k: v for k, v in opts.items()
                    if k in ("limit", "marker", "sort_key", "sort_dir")
                    or (k in USER_FILTERS and (
                        USER_FILTERS[k] is None or common.is_at_least(
                            request, USER_FILTERS[k])))}
        filters: dict[str, Any] = {}

        # status -> vm_state / task_state
        if "status" in opts:
            statuses = [s for s in params.get("status", []) if s]
            vm_state, task_state = vm_states.states_from_status(statuses)
            if not vm_state:
                if common.is_at_least(request, "2.38"):
                    raise exception.InvalidInput(
                        reason="Invalid status value")
                return None
            filters["vm_state"] = vm_state
            if "default" not in task_state:
                filters["task_state"] = task_state
        if all_filters:
            for key in ADMIN_EXACT:
                if key in opts and key not in ("vm_state", "task_state"):
                    value: Any = opts[key]
                    if key in ("launch_index", "progress", "power_state"):
                        try:
                            value = int(value)
                        except ValueError:
                            raise exception.ValidationError(
                                field=key,
                                detail=f"Value: {value!r}. not an "
                                "integer") from None
                    filters[key] = value
            for key in ("vm_state", "task_state"):
                if key in opts and "status" not in opts:
                    filters[key] = [v for v in params[key] if v]
        for key in ("changes-since", "changes-before"):
            if key in opts:
                filters[key.replace("-", "_")] = common.parse_isotime(
                    opts[key], key)
        if filters.get("changes_since") and filters.get("changes_before") \
                and filters["changes_since"] > filters["changes_before"]:
            raise exception.InvalidInput(
                reason="The value of changes-since must be less than or "
                "equal to changes-before.")
        if "deleted" not in opts:
            if "changes_since" not in filters and \
                    "changes_before" not in filters:
                filters["deleted"] = False
        else:
            filters["deleted"] = _loose_bool(opts["deleted"])
        if filters.get("vm_state") == [vm_states.DELETED]:
            if not context.is_admin:
                raise exception.Forbidden(
                    "Only administrators may list deleted instances")
            filters["deleted"] = True

        all_tenants = False
        if "all_tenants" in opts:
            text = opts["all_tenants"]
            all_tenants = True if text == "" else common.parse_bool(
                text, "all_tenants")
        if all_tenants:
            self.services.policy.authorize(
                context, "os_compute_api:servers:"
                f"{'detail' if detail else 'index'}:get_all_tenants")
            project = opts.get("project_id") or opts.get("tenant_id")
            if project:
                filters["project_id"] = project
        else:
            filters["project_id"] = context.project_id

        if "name" in opts:
            try:
                re.compile(opts["name"])
            except re.error:
                raise exception.InvalidInput(
                    reason=f"Invalid regular expression for name: "
                    f"{opts['name']!r}") from None
            filters["name"] = opts["name"]
        if "reservation_id" in opts:
            filters["reservation_id"] = opts["reservation_id"]
        if "image" in opts:
            filters["image_ref"] = opts["image"].rstrip("/").rsplit(
                "/", 1)[-1]
        if "flavor" in opts:
            filters["flavor"] = opts["flavor"].rstrip("/").rsplit("/", 1)[-1]
        if "locked" in opts:
            filters["locked"] = common.parse_bool(opts["locked"], "locked")
        for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
            if key in opts:
                filters[key.replace("-", "_")] = [
                    t.strip() for t in opts[key].split(",") if t.strip()]

        sort_keys = [k for k in params.get("sort_key", []) if k]
        sort_dirs = [d for d in params.get("sort_dir", []) if d]
        for key in sort_keys:
            valid = VALID_SORT_KEYS + (
                ("locked",) if common.is_at_least(request, "2.73") else ())
            if key not in valid and key not in IGNORED_SORT_KEYS:
                raise exception.ValidationError(
                    field="sort_key",
                    detail=f"Value: {key!r}. is not one of the valid sort "
                    "keys")
        for direction in sort_dirs:
            if direction not in ("asc", "desc"):
                raise exception.ValidationError(
                    field="sort_dir",
                    detail=f"Value: {direction!r}. is not one of "
                    "['asc', 'desc']")
        if not all_filters and ({"host", "node"} & set(sort_keys)):
            raise exception.Forbidden(
                "Only administrators can sort servers by host, node")
        pairs = []
        for index, key in enumerate(sort_keys):
            direction = sort_dirs[index] if index < len(sort_dirs) else (
                sort_dirs[-1] if sort_dirs else "desc")
            usable = VALID_SORT_KEYS + ("locked",) if \
                common.is_at_least(request, "2.73") else VALID_SORT_KEYS
            if key in usable and key not in _UNSORTABLE:
                pairs.append((key, direction))
        if not pairs:
            pairs = [("created_at", sort_dirs[0] if sort_dirs and
                      not sort_keys else "desc")]
        limit, marker = common.limit_and_marker(request,
                                                self.conf.api.max_limit)
        return (filters, [k for k, _ in pairs], [d for _, d in pairs],
                limit, marker)

    async def _list(self, request, detail: bool):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, f"os_compute_api:servers:{'detail' if detail else 'index'}")
        search = self._search(request, context, detail)
        if search is None:
            return [], 0
        filters, sort_keys, sort_dirs, limit, marker = search
        if "flavor" in filters:
            flavorid = filters.pop("flavor")
            try:
                flavor = await self.db.flavors.get_by_flavorid(flavorid)
            except exception.FlavorNotFound:
                return [], limit
            filters["instance_type_id"] = flavor.id
        instances = await self.compute_api.get_all(
            context, filters, sort_keys, sort_dirs, limit, marker)
        return instances, limit

    @route(app, "/servers", ["GET"])
    async def index(self, request):
        instances, limit = await self._list(request, detail=False)
        builder = make_views(self.services, request,
                             common.get_context(request))
        body: dict[str, Any] = {
            "servers": [builder.basic(i) for i in instances]}
        links = common.next_link(request, "servers", body["servers"], limit)
        if links:
            body["servers_links"] = links
        return json_response(request, body)

    @route(app, "/servers/detail", ["GET"])
    async def detail(self, request):
        instances, limit = await self._list(request, detail=True)
        context = common.get_context(request)
        builder = make_views(self.services, request, context)
        statuses = None
        if builder.host_status:
            statuses = await self.compute_api.host_statuses(
                [i.host for i in instances if i.host])
        body: dict[str, Any] = {"servers": [
            builder.show(i, host_statuses=statuses) for i in instances]}
        links = common.next_link(request, "servers", body["servers"], limit)
        if links:
            body["servers_links"] = links
        return json_response(request, body)

    # --- show ---------------------------------------------------------

    async def _instance(self, request, server_id, rule: str,
                        read_deleted: bool = False):
        context = common.get_context(request)
        instance = await self.compute_api.get(context, server_id,
                                              read_deleted)
        self.services.policy.authorize(context, rule,
                                       instance_target(instance))
        return context, instance

    @route(app, "/servers/<server_id>", ["GET"])
    async def show(self, request, server_id):
        context, instance = await self._instance(
            request, server_id, "os_compute_api:servers:show")
        return json_response(request, await show_body(
            self.services, request, context, instance))

    # --- create -------------------------------------------------------

    @route(app, "/servers", ["POST"])
    async def create(self, request):
        context = common.get_context(request)
        self.services.policy.authorize(
            context, "os_compute_api:servers:create",
            {"project_id": context.project_id, "user_id": context.user_id})
        body = common.read_body(request)
        common.validate(body, schema.create(request.api_version))
        spec = await self._create_request(request, context, body)
        try:
            instances, reservation_id, admin_pass = \
                await self.compute_api.create(context, spec)
        except exception.InstanceGroupNotFound as exc:
            raise exception.InvalidInput(
                reason=exc.format_message()) from None
        if spec["return_reservation_id"]:
            return json_response(request,
                                 {"reservation_id": reservation_id}, 202)
        builder = make_views(self.services, request, context)
        first = instances[0]
        request.setHeader(b"location", builder.links(first.uuid)[0][
            "href"].encode())
        return json_response(request, views.create_response(
            builder, first, admin_pass), 202)

    async def _create_request(self, request, context, body) -> dict:
        """The validated body as the compute API layer takes it."""
        server = body["server"]
        hints = dict(body.get("OS-SCH-HNT:scheduler_hints") or
                     body.get("os:scheduler_hints") or {})
        min_count = int(server.get("min_count", 1))
        max_count = int(server.get("max_count", min_count))
        if min_count > max_count:
            raise exception.InvalidInput(
                reason="min_count must be <= max_count")
        spec: dict[str, Any] = {
            "name": server["name"],
            "flavor_ref": str(server["flavorRef"]),
            "min_count": min_count,
            "max_count": max_count,
            "return_reservation_id": to_bool(
                server.get("return_reservation_id", False)),
            "metadata": dict(server.get("metadata") or {}),
            "key_name": server.get("key_name"),
            "admin_pass": server.get("adminPass"),
            "description": server.get("description"),
            "tags": list(server.get("tags") or []),
            "access_ip_v4": server.get("accessIPv4") or None,
            "access_ip_v6": server.get("accessIPv6") or None,
            "disk_config": server.get("OS-DCF:diskConfig"),
            "config_drive": to_bool(server.get("config_drive", False)),
            "scheduler_hints": hints,
            "trusted_image_certificates": server.get(
                "trusted_image_certificates"),
        }
        # security groups: names, deduplicated, "default" when none
        names = []
        for group in server.get("security_groups") or ():
            if group.get("name") and group["name"] not in names:
                names.append(group["name"])
        spec["security_groups"] = [{"name": n} for n in
                                   (names or ["default"])]
        spec["networks"] = self._networks(server, max_count)
        spec["image_ref"], spec["block_device_mapping"] = \
            self._boot_source(server)
        if "user_data" in server and server["user_data"] is not None:
            try:
                base64.b64decode(server["user_data"], validate=False)
            except (binascii.Error, ValueError):
                raise exception.InvalidInput(
                    reason="Userdata content cannot be decoded") from None
            spec["user_data"] = server["user_data"]
        spec["personality"] = self._personality(server)
        self._destination(request, context, server, spec)
        return spec

    @staticmethod
    def _networks(server, max_count):
        networks = server.get("networks")
        if networks is None or isinstance(networks, str):
            return networks
        requested = []
        for entry in networks:
            if entry.get("port"):
                if max_count > 1:
                    raise exception.InvalidInput(
                        reason="Unable to launch multiple instances with "
                        "a single configured port ID. Please launch your "
                        "instance one by one with different ports.")
            elif "uuid" in entry:
                if not common.is_uuid_like(entry["uuid"]):
                    raise exception.InvalidInput(
                        reason="Bad networks format: network uuid is not "
                        f"in proper format ({entry['uuid']})")
            else:
                raise exception.InvalidInput(
                    reason="Bad network format: missing 'uuid'")
            requested.append({k: entry.get(k) for k in
                              ("uuid", "port", "fixed_ip", "tag")
                              if entry.get(k) is not None})
        return requested

    @staticmethod
    def _boot_source(server):
        """(image id, block device mapping) of the request; volumes are
        refused (501): there is no block storage service."""
        image_ref = server.get("imageRef") or ""
        v1 = server.get("block_device_mapping")
        v2 = server.get("block_device_mapping_v2")
        if v1 and v2:
            raise exception.InvalidInput(
                reason="Using different block_device_mapping syntaxes is "
                "not allowed in the same request.")
        for entry in v1 or ():
            if entry.get("no_device"):
                continue
            source = "snapshot" if entry.get("snapshot_id") else "volume"
            raise exception.VolumeBackedNotSupported(source=source)
        mapping = []
        boot_image = None
        for entry in v2 or ():
            source = entry.get("source_type", "volume" if (
                entry.get("volume_id") or entry.get("snapshot_id"))
                else "blank")
            dest = entry.get("destination_type") or (
                "volume" if source in ("volume", "snapshot") else "local")
            if dest == "volume" or source in ("volume", "snapshot"):
                raise exception.VolumeBackedNotSupported(source=source)
            boot_index = entry.get("boot_index")
            try:
                boot_index = int(boot_index) if boot_index is not None \
                    else None
            except ValueError:
                raise exception.InvalidInput(
                    reason=f"Invalid boot_index {boot_index!r}") from None
            item = {"source_type": source, "destination_type": dest,
                    "boot_index": boot_index}
            for key in ("guest_format", "device_type", "disk_bus",
                        "device_name", "volume_size", "tag"):
                if entry.get(key) is not None:
                    item[key] = entry[key]
            if "delete_on_termination" in entry:
                item["delete_on_termination"] = to_bool(
                    entry["delete_on_termination"])
            if source == "image":
                image_id = entry.get("uuid") or entry.get("image_id")
                if not image_id:
                    raise exception.InvalidInput(
                        reason="Block device mapping with source_type "
                        "'image' needs a uuid")
                item["image_id"] = image_id
                if boot_index == 0:
                    boot_image = image_id
            mapping.append(item)
        if boot_image is not None and not image_ref:
            image_ref = boot_image
        if not image_ref:
            raise exception.InvalidInput(reason="Missing imageRef attribute")
        return image_ref, mapping

    def _personality(self, server) -> list[dict[str, str]]:
        files = server.get("personality") or []
        if not files:
            return []
        limits = quotas_db.defaults(self.conf)
        if 0 <= limits["injected_files"] < len(files):
            raise exception.OverQuota("Personality file limit exceeded")
        for item in files:
            path = item.get("path") or ""
            max_path = limits["injected_file_path_length"]
            if 0 <= max_path < len(path):
                raise exception.OverQuota(
                    f"Personality file path exceeds maximum {max_path}")
            try:
                content = base64.b64decode(item.get("contents") or "")
            except (binascii.Error, ValueError):
                raise exception.InvalidInput(
                    reason=f"Personality content for {path} cannot be "
                    "decoded") from None
            max_bytes = limits["injected_file_content_bytes"]
            if 0 <= max_bytes < len(content):
                raise exception.OverQuota(
                    f"Personality file content exceeds maximum {max_bytes}")
        return [{"path": f.get("path"), "contents": f.get("contents")}
                for f in files]

    def _destination(self, request, context, server, spec) -> None:
        """``availability_zone`` (``zone[:host[:node]]``) and, from
        2.74, ``host`` / ``hypervisor_hostname`` (admins)."""
        zone = server.get("availability_zone")
        host = node = None
        if zone and ":" in zone:
            zone, _, rest = zone.partition(":")
            host, _, node = rest.partition(":")
            if host or node:
                self.services.policy.authorize(
                    context, "os_compute_api:servers:create:forced_host")
        spec["availability_zone"] = zone or None
        spec["force_host"] = host or None
        spec["force_node"] = node or None
        wanted_host = server.get("host")
        wanted_node = server.get("hypervisor_hostname")
        if wanted_host or wanted_node:
            if host or node:
                raise exception.InvalidInput(
                    reason="The host and hypervisor_hostname parameters "
                    "cannot be combined with the zone:host:node format "
                    "of availability_zone.")
            self.services.policy.authorize(
                context, "os_compute_api:servers:create:"
                "requested_destination")
            spec["requested_destination"] = {"host": wanted_host,
                                             "node": wanted_node}

    # --- update, delete -----------------------------------------------

    @route(app, "/servers/<server_id>", ["PUT"])
    async def update(self, request, server_id):
        context, instance = await self._instance(
            request, server_id, "os_compute_api:servers:update")
        body = common.read_body(request)
        common.validate(body, schema.update(request.api_version))
        server = body["server"]
        values: dict[str, Any] = {}
        if "name" in server:
            values["display_name"] = server["name"]
        if "description" in server:
            values["display_description"] = server["description"]
        if "accessIPv4" in server:
            values["access_ip_v4"] = server["accessIPv4"] or None
        if "accessIPv6" in server:
            values["access_ip_v6"] = server["accessIPv6"] or None
        if "OS-DCF:diskConfig" in server:
            values["system_metadata"] = {
                **instance.system_metadata,
                "disk_config": server["OS-DCF:diskConfig"]}
        if values:
            instance = await self.compute_api.update(context, server_id,
                                                     values)
        full = common.is_at_least(request, "2.75")
        return json_response(request, await show_body(
            self.services, request, context, instance, full=full))

    @route(app, "/servers/<server_id>", ["DELETE"])
    async def delete(self, request, server_id):
        context, instance = await self._instance(
            request, server_id, "os_compute_api:servers:delete")
        await self.compute_api.delete(context, server_id)
        return json_response(request, None, 204)
