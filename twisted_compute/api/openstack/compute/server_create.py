"""``POST /servers``: a validated request body normalised into what the
compute API layer's ``create`` takes (:func:`server_body`); the compute
API layer turns that into the instances and the
:class:`~twisted_compute.objects.boot_request.BootRequest` it hands to
the conductor."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.compute.schemas import to_bool
from twisted_compute.db import quotas as quotas_db


def server_body(request, context, body, policy, conf) -> dict[str, Any]:
    """The validated ``POST /servers`` ``body`` as the compute API layer's
    ``create`` takes it: names normalised, defaults filled in, what the
    schema cannot check checked (counts, networks, the boot source,
    personality limits, who may force a host)."""
    server = body["server"]
    hints = dict(body.get("OS-SCH-HNT:scheduler_hints") or
                 body.get("os:scheduler_hints") or {})
    min_count = common.bounded_int(server.get("min_count", 1),
                                   "server/min_count", 1)
    max_count = common.bounded_int(server.get("max_count", min_count),
                                   "server/max_count", 1)
    if min_count > max_count:
        raise exception.InvalidInput(
            reason="min_count must be <= max_count")
    values: dict[str, Any] = {
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
        "access_ip_v6": common.canonical_ipv6(server.get("accessIPv6")),
        "disk_config": server.get("OS-DCF:diskConfig"),
        "config_drive": to_bool(server.get("config_drive", False)),
        "scheduler_hints": hints,
        "trusted_image_certificates": server.get(
            "trusted_image_certificates"),
    }
    if "hostname" in server:
        # 2.90 (a label), 2.94 (an FQDN): one name cannot serve several
        # servers (Nova's AmbiguousHostnameForMultipleInstances).
        if max_count > 1:
            raise exception.InvalidInput(
                reason="Unable to allocate a single hostname to multiple "
                       "instances")
        values["hostname"] = server["hostname"]
    # security groups: names, deduplicated, "default" when none
    names = []
    for group in server.get("security_groups") or ():
        if group.get("name") and group["name"] not in names:
            names.append(group["name"])
    values["security_groups"] = [{"name": n} for n in
                                 (names or ["default"])]
    values["networks"] = _networks(server, max_count)
    values["image_ref"], values["block_device_mapping"] = \
        _boot_source(server)
    if "user_data" in server and server["user_data"] is not None:
        try:
            base64.b64decode(server["user_data"], validate=False)
        except (binascii.Error, ValueError):
            raise exception.InvalidInput(
                reason="Userdata content cannot be decoded") from None
        values["user_data"] = server["user_data"]
    values["personality"] = _personality(conf, server)
    _destination(request, context, policy, server, values)
    return values


def _networks(server, max_count):
    """``networks`` as asked for: ``auto``, ``none`` or None.  There is no
    network service, so no network or port id names anything: one is
    refused with 400 as Nova refuses an unknown one."""
    networks = server.get("networks")
    if networks is None or isinstance(networks, str):
        return networks
    for entry in networks:
        if entry.get("port"):
            if max_count > 1:
                raise exception.InvalidInput(
                    reason="Unable to launch multiple instances with "
                    "a single configured port ID. Please launch your "
                    "instance one by one with different ports.")
            raise exception.InvalidInput(reason=exception.PortNotFound(
                port_id=entry["port"]).format_message())
        elif "uuid" in entry:
            if not common.is_uuid_like(entry["uuid"]):
                raise exception.InvalidInput(
                    reason="Bad networks format: network uuid is not "
                    f"in proper format ({entry['uuid']})")
            raise exception.InvalidInput(reason=exception.NetworkNotFound(
                network_id=entry["uuid"]).format_message())
        else:
            raise exception.InvalidInput(
                reason="Bad network format: missing 'uuid'")
    return []


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


def _personality(conf, server) -> list[dict[str, str]]:
    files = server.get("personality") or []
    if not files:
        return []
    limits = quotas_db.defaults(conf)
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


def _destination(request, context, policy, server, values) -> None:
    """``availability_zone`` (``zone[:host[:node]]``) and, from
    2.74, ``host`` / ``hypervisor_hostname`` (admins)."""
    zone = server.get("availability_zone")
    host = node = None
    if zone and ":" in zone:
        zone, _, rest = zone.partition(":")
        host, _, node = rest.partition(":")
        if host or node:
            policy.authorize(
                context, "os_compute_api:servers:create:forced_host")
    values["availability_zone"] = zone or None
    values["force_host"] = host or None
    values["force_node"] = node or None
    wanted_host = server.get("host")
    wanted_node = server.get("hypervisor_hostname")
    if wanted_host or wanted_node:
        if host or node:
            raise exception.InvalidInput(
                reason="The host and hypervisor_hostname parameters "
                "cannot be combined with the zone:host:node format "
                "of availability_zone.")
        policy.authorize(
            context, "os_compute_api:servers:create:"
            "requested_destination")
        values["requested_destination"] = {"host": wanted_host,
                                         "node": wanted_node}
