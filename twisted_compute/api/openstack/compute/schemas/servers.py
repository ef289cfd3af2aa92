"""Schemas of server bodies (create, update, actions, metadata, tags),
built per microversion."""

from __future__ import annotations

import copy
from functools import lru_cache

from twisted_compute.api.openstack.api_version import APIVersion
from twisted_compute.api.openstack.compute.schemas import (
    boolean, description, name, name_with_leading_trailing_spaces,
    non_negative_integer, positive_integer)

uuid = {"type": "string", "format": "uuid"}
ipv4 = {"type": "string", "format": "ipv4"}
ipv6 = {"type": "string", "format": "ipv6"}
ip_address = {"type": "string", "oneOf": [{"format": "ipv4"},
                                          {"format": "ipv6"}]}
accessipv4 = {"oneOf": [ipv4, {"type": "string", "maxLength": 0},
                        {"type": "null"}]}
accessipv6 = {"oneOf": [ipv6, {"type": "string", "maxLength": 0},
                        {"type": "null"}]}
base64 = {"type": "string",
          "pattern": r"^(?:[A-Za-z0-9+/\s]{4})*(?:[A-Za-z0-9+/\s]{2}==|"
                     r"[A-Za-z0-9+/\s]{3}=|[A-Za-z0-9+/\s]{4}|"
                     r"[A-Za-z0-9+/\s]*)$"}

#: Metadata: string keys 1..255 (no '/' nor control characters... Nova
#: allows any printable key), string values up to 255.
metadata = {
    "type": "object",
    "patternProperties": {
        r"^[^\x00-\x1f\x7f]{1,255}$": {"type": "string",
                                        "maxLength": 255},
    },
    "additionalProperties": False,
}

#: A tag: 1..60 characters, neither '/' nor ','.
tag = {"type": "string", "minLength": 1, "maxLength": 60,
       "pattern": r"^[^,/]*$"}
tags = {"type": "array", "items": tag, "maxItems": 50}

device_tag = {"type": "string", "maxLength": 255,
              "pattern": r"^[^,/]*$"}

flavor_ref = {"type": ["string", "integer"], "minLength": 1}

#: ``hostname`` from 2.90: one DNS label (RFC 1123: may start with a
#: digit, neither starts nor ends with a dash).
hostname = {"type": "string", "minLength": 2, "maxLength": 63,
            "pattern": r"^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"}
#: ``hostname`` from 2.94: a fully qualified domain name.
fqdn = {"type": "string", "minLength": 2, "maxLength": 255,
        "pattern": r"^[a-zA-Z0-9]+[a-zA-Z0-9-._]*[a-zA-Z0-9]+$"}


def hostname_for(v: APIVersion) -> dict | None:
    """The ``hostname`` schema at ``v`` (None before 2.90)."""
    if v >= APIVersion("2.94"):
        return fqdn
    if v >= APIVersion("2.90"):
        return hostname
    return None
image_ref = {"type": "string"}

_network = {
    "type": "object",
    "properties": {
        "fixed_ip": ip_address,
        "port": {"oneOf": [uuid, {"type": "null"}]},
        "uuid": {"type": "string"},
    },
    "additionalProperties": False,
}

_bdm_v2 = {
    "type": "object",
    "properties": {
        "source_type": {"type": "string",
                        "enum": ["volume", "image", "snapshot", "blank"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
                 "pattern": r"^[a-zA-Z0-9._-]*$"},
        "image_id": uuid,
        "destination_type": {"type": "string",
                             "enum": ["local", "volume"]},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"],
                       "pattern": "^-?[0-9]+$"},
        "delete_on_termination": boolean,
        "device_name": {"type": "string", "minLength": 1,
                        "maxLength": 255, "pattern": r"^[^\s]*$"},
        "volume_id": uuid,
        "snapshot_id": uuid,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
        "volume_size": non_negative_integer,
    },
    "additionalProperties": False,
}

_bdm_v1 = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": uuid,
        "snapshot_id": uuid,
        "volume_size": non_negative_integer,
        "device_name": {"type": "string", "minLength": 1,
                        "maxLength": 255},
        "delete_on_termination": boolean,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
    },
    "additionalProperties": False,
}

_personality = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "contents": base64},
        "additionalProperties": False,
    },
}

_hints = {
    "type": "object",
    "properties": {
        "group": uuid,
        "different_host": {"oneOf": [{"type": "string", "format": "uuid"},
                                     {"type": "array", "items": uuid}]},
        "same_host": {"type": ["string", "array"], "items": uuid},
        "query": {"type": ["string", "object"]},
        "target_cell": {"type": "string", "minLength": 1,
                        "maxLength": 255},
        "different_cell": {"type": ["string", "array"],
                           "items": {"type": "string"}},
        "build_near_host_ip": ip_address,
        "cidr": {"type": "string", "pattern": r"^/[0-9a-f.:]+$"},
    },
    "additionalProperties": True,
}

_base_server = {
    "type": "object",
    "properties": {
        "name": name,
        "imageRef": image_ref,
        "flavorRef": flavor_ref,
        "adminPass": {"type": "string"},
        "metadata": metadata,
        "networks": {"type": "array", "items": _network},
        "OS-DCF:diskConfig": {"type": "string",
                              "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": accessipv4,
        "accessIPv6": accessipv6,
        "personality": _personality,
        "availability_zone": name,
        "block_device_mapping": {"type": "array", "items": _bdm_v1},
        "block_device_mapping_v2": {"type": "array", "items": _bdm_v2},
        "config_drive": boolean,
        "key_name": name_with_leading_trailing_spaces,
        "min_count": positive_integer,
        "max_count": positive_integer,
        "return_reservation_id": boolean,
        "security_groups": {
            "type": "array",
            "items": {"type": "object",
                      "properties": {"name": {"type": "string",
                                              "minLength": 1,
                                              "maxLength": 255}},
                      "additionalProperties": False}},
        "user_data": {**base64, "maxLength": 65535},
    },
    "required": ["name", "flavorRef"],
    "additionalProperties": False,
}


@lru_cache(maxsize=None)
def _create_for(version: str) -> dict:
    v = APIVersion(version)
    server = copy.deepcopy(_base_server)
    props = server["properties"]
    if v >= APIVersion("2.19"):
        props["description"] = description
    if APIVersion("2.32") <= v < APIVersion("2.37") or \
            v >= APIVersion("2.42"):
        props["networks"]["items"]["properties"]["tag"] = device_tag
        props["block_device_mapping_v2"]["items"]["properties"]["tag"] = \
            device_tag
    if v >= APIVersion("2.37"):
        network_list = props["networks"]
        props["networks"] = {"oneOf": [
            network_list, {"type": "string", "enum": ["auto", "none"]}]}
        server["required"] = ["name", "flavorRef", "networks"]
    if v >= APIVersion("2.52"):
        props["tags"] = tags
    if v >= APIVersion("2.57"):
        del props["personality"]
    if v >= APIVersion("2.63"):
        props["trusted_image_certificates"] = {
            "type": ["array", "null"], "minItems": 1, "maxItems": 50,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1}}
    if v >= APIVersion("2.67"):
        props["block_device_mapping_v2"]["items"]["properties"][
            "volume_type"] = {"type": ["string", "null"], "minLength": 0,
                              "maxLength": 255}
    if v >= APIVersion("2.74"):
        props["host"] = {"type": "string", "minLength": 1,
                         "maxLength": 255}
        props["hypervisor_hostname"] = {"type": "string", "minLength": 1,
                                        "maxLength": 255}
    if hostname_for(v) is not None:
        props["hostname"] = hostname_for(v)
    return {
        "type": "object",
        "properties": {
            "server": server,
            "os:scheduler_hints": _hints,
            "OS-SCH-HNT:scheduler_hints": _hints,
        },
        "required": ["server"],
        "additionalProperties": False,
    }


def create(version) -> dict:
    return _create_for(str(version))


@lru_cache(maxsize=None)
def _update_for(version: str) -> dict:
    v = APIVersion(version)
    props = {
        "name": name,
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": accessipv4,
        "accessIPv6": accessipv6,
    }
    if v >= APIVersion("2.19"):
        props["description"] = description
    if hostname_for(v) is not None:
        props["hostname"] = hostname_for(v)
    if v >= APIVersion("2.104"):
        props["pinned_availability_zone"] = {
            "oneOf": [{"type": "null"}, name]}
    return {
        "type": "object",
        "properties": {"server": {"type": "object", "properties": props,
                                  "additionalProperties": False}},
        "required": ["server"],
        "additionalProperties": False,
    }


def update(version) -> dict:
    return _update_for(str(version))


# --- actions --------------------------------------------------------------

def _action(key: str, inner: dict | None = None, nullable: bool = True
            ) -> dict:
    """``{key: inner}`` (``inner`` may be null when ``nullable``)."""
    value = inner if inner is not None else {"type": ["object", "null"]}
    if nullable and inner is not None:
        value = {"oneOf": [inner, {"type": "null"}]}
    return {"type": "object", "properties": {key: value},
            "required": [key], "additionalProperties": False}


def _obj(properties: dict, required=(), additional=False) -> dict:
    schema = {"type": "object", "properties": properties,
              "additionalProperties": additional}
    if required:
        schema["required"] = list(required)
    return schema


reboot = _action("reboot", _obj(
    {"type": {"type": "string",
              "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}},
    ["type"]), nullable=False)
stop = _action("os-stop")
start = _action("os-start")
pause = _action("pause")
unpause = _action("unpause")
suspend = _action("suspend")
resume = _action("resume")
lock = _action("lock")
lock_v273 = _action("lock", _obj({"locked_reason": {
    "type": "string", "minLength": 1, "maxLength": 255}}))
unlock = _action("unlock")
reset_state = _action("os-resetState", _obj(
    {"state": {"type": "string", "enum": ["active", "error"]}},
    ["state"]), nullable=False)
get_console_output = _action("os-getConsoleOutput", _obj(
    {"length": {"type": ["integer", "string", "null"],
                "pattern": "^-?[0-9]+$", "minimum": -1}}))
inject_network_info = _action("injectNetworkInfo")
reset_network = _action("resetNetwork")
trigger_crash_dump = _action("trigger_crash_dump")
force_delete = _action("forceDelete")
restore = _action("restore")
confirm_resize = _action("confirmResize")
revert_resize = _action("revertResize")
shelve = _action("shelve")
shelve_offload = _action("shelveOffload")
unrescue = _action("unrescue")
migrate = _action("migrate", _obj({"host": {"type": ["string", "null"],
                                            "minLength": 1,
                                            "maxLength": 255}}))
resize = _action("resize", _obj({
    "flavorRef": flavor_ref,
    "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}},
    ["flavorRef"]), nullable=False)
rebuild = _action("rebuild", _obj({
    "imageRef": image_ref, "name": name, "adminPass": {"type": "string"},
    "metadata": metadata, "preserve_ephemeral": boolean,
    "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
    "accessIPv4": accessipv4, "accessIPv6": accessipv6,
    "personality": _personality, "description": description,
    "key_name": {"type": ["string", "null"]},
    "user_data": {"oneOf": [{**base64, "maxLength": 65535},
                            {"type": "null"}]},
    "trusted_image_certificates": {"type": ["array", "null"]},
    # 2.90 / 2.94 (rebuild answers 501 until it exists; then versioned)
    "hostname": fqdn},
    ["imageRef"]), nullable=False)
#: Rebuild body fields and the microversion range they exist in
#: (first, last; None: open).
_REBUILD_FIELD_VERSIONS = {
    "description": ("2.19", None), "key_name": ("2.54", None),
    "personality": (None, "2.56"), "user_data": ("2.57", None),
    "trusted_image_certificates": ("2.63", None), "hostname": ("2.90", None),
}


def rebuild_schema(version) -> dict:
    """The rebuild body at microversion ``version`` (an object with
    ``matches(min, max)``): a field outside its range is an unknown
    property (400), as in Nova."""
    dropped = tuple(field for field, (first, last)
                    in _REBUILD_FIELD_VERSIONS.items()
                    if not version.matches(first, last))
    found = _REBUILD_SCHEMAS.get(dropped)
    if found is None:
        inner = rebuild["properties"]["rebuild"]
        properties = {k: v for k, v in inner["properties"].items()
                      if k not in dropped}
        found = _REBUILD_SCHEMAS[dropped] = _action(
            "rebuild", {**inner, "properties": properties}, nullable=False)
    return found


#: One rebuild schema per set of fields a microversion drops (the
#: OpenAPI document and the handler share it).
_REBUILD_SCHEMAS: dict[tuple[str, ...], dict] = {}


create_image = _action("createImage", _obj(
    {"name": name, "metadata": metadata}, ["name"]), nullable=False)
create_backup = _action("createBackup", _obj(
    {"name": name, "backup_type": {"type": "string"},
     "rotation": non_negative_integer, "metadata": metadata},
    ["name", "backup_type", "rotation"]), nullable=False)
rescue = _action("rescue", _obj(
    {"adminPass": {"type": "string"}, "rescue_image_ref": uuid}))
unshelve = _action("unshelve", _obj(
    {"availability_zone": {"type": ["string", "null"]},
     # 2.91 (unshelve answers 501 until it exists; then versioned)
     "host": {"type": "string", "minLength": 1, "maxLength": 255}}))
live_migrate = _action("os-migrateLive", _obj(
    {"block_migration": {"type": ["boolean", "string"]},
     "disk_over_commit": boolean,
     "host": {"type": ["string", "null"]},
     "force": boolean}, ["block_migration", "host"]), nullable=False)
evacuate = _action("evacuate", _obj(
    {"host": {"type": "string"}, "onSharedStorage": boolean,
     "adminPass": {"type": "string"}, "force": boolean}),
    nullable=False)
change_password = _action("changePassword", _obj(
    {"adminPass": {"type": "string"}}, ["adminPass"]), nullable=False)
add_security_group = _action("addSecurityGroup", _obj(
    {"name": {"type": "string", "minLength": 1, "maxLength": 255}},
    ["name"]), nullable=False)
remove_security_group = _action("removeSecurityGroup", _obj(
    {"name": {"type": "string", "minLength": 1, "maxLength": 255}},
    ["name"]), nullable=False)


# --- metadata, tags -------------------------------------------------------

metadata_all = {"type": "object", "properties": {"metadata": metadata},
                "required": ["metadata"], "additionalProperties": False}

metadata_item = {
    "type": "object",
    "properties": {"meta": {**metadata, "minProperties": 1,
                            "maxProperties": 1}},
    "required": ["meta"], "additionalProperties": False,
}

tags_all = {"type": "object", "properties": {"tags": tags},
            "required": ["tags"], "additionalProperties": False}
