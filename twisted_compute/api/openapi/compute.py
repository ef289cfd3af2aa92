"""The Compute API (``/v2.1``): every route of the controllers with the
request schemas they validate with (the objects of
:mod:`twisted_compute.api.openstack.compute.schemas`, chosen per
microversion as the controllers choose them) and the response bodies
the views build (written here as JSON Schema, per microversion; Nova's
samples in ``nova-api-samples`` show the same keys)."""

from __future__ import annotations

from twisted_compute.api.openapi.jsonschema import (
    ANY_OBJECT, BOOLEAN, INTEGER, LINKS, NULL_INTEGER, NULL_STRING, NUMBER,
    STRING, STRING_MAP, STRINGS, array, nullable, obj)
from twisted_compute.api.openapi.table import (
    OMIT, Operation, Param, versioned)
from twisted_compute.api.openstack.api_version import APIVersion
from twisted_compute.api.openstack.compute import \
    absent_services as absent_controller
from twisted_compute.api.openstack.compute import hosts as hosts_controller
from twisted_compute.api.openstack.compute import \
    migrations as migrations_controller
from twisted_compute.api.openstack.compute import \
    server_actions as actions_controller
from twisted_compute.api.openstack.compute.schemas import (
    aggregates as aggregates_schema, flavor_access as access_schema,
    flavor_extra_specs as specs_schema, flavors as flavors_schema,
    keypairs as keypairs_schema, quota_classes as quota_class_schema,
    quota_sets as quota_schema, remote_consoles as consoles_schema,
    server_external_events as events_schema, server_groups as groups_schema,
    servers as servers_schema, services as services_schema)
from twisted_compute.api.openstack.compute.views import \
    quota_classes as quota_class_views, quota_sets as quota_views

V = APIVersion


def _at(version: V, low: str) -> bool:
    return version >= V(low)


# --- response bodies --------------------------------------------------------

def _list_body(key: str, item: dict, links_key: str | None = None) -> dict:
    properties = {key: array(item)}
    optional: tuple[str, ...] = ()
    if links_key:
        properties[links_key] = LINKS
        optional = (links_key,)
    return obj(properties, optional)


def _one(key: str, item: dict) -> dict:
    return obj({key: item})


SINGLE_STRING_MAP = {"type": "object", "minProperties": 1,
                     "maxProperties": 1, "additionalProperties": STRING}


# flavors

def flavor_basic(v: V) -> dict:
    properties = {"id": STRING, "name": STRING, "links": LINKS}
    if _at(v, "2.55"):
        properties["description"] = NULL_STRING
    return obj(properties)


def flavor_detail(v: V) -> dict:
    schema = flavor_basic(v)
    properties = dict(schema["properties"])
    properties.update({
        "ram": INTEGER, "disk": INTEGER, "vcpus": INTEGER,
        "swap": INTEGER if _at(v, "2.75") else
        {"anyOf": [INTEGER, {"type": "string", "maxLength": 0}]},
        "OS-FLV-EXT-DATA:ephemeral": INTEGER,
        "OS-FLV-DISABLED:disabled": BOOLEAN,
        "os-flavor-access:is_public": BOOLEAN,
        "rxtx_factor": NUMBER,
    })
    optional: tuple[str, ...] = ()
    if _at(v, "2.61"):
        properties["extra_specs"] = STRING_MAP
        optional = ("extra_specs",)
    return obj(properties, optional)


FLAVOR_ACCESS = obj({"flavor_access": array(obj({
    "flavor_id": STRING, "tenant_id": STRING}))})


# key pairs

def _keypair_base(v: V) -> dict:
    properties = {"name": STRING, "public_key": STRING,
                  "fingerprint": STRING}
    if _at(v, "2.2"):
        properties["type"] = STRING
    return properties


def keypair_listed(v: V) -> dict:
    return obj({"keypair": obj(_keypair_base(v))})


def keypair_created(v: V) -> dict:
    properties = {**_keypair_base(v), "user_id": STRING,
                  "private_key": STRING}
    return obj(properties, optional=("private_key",))


def keypair_show(v: V) -> dict:
    return obj({**_keypair_base(v), "user_id": STRING, "id": INTEGER,
                "deleted": BOOLEAN, "created_at": NULL_STRING,
                "updated_at": NULL_STRING, "deleted_at": {"type": "null"}})


# limits

def limits_absolute(v: V) -> dict:
    names = ["maxTotalInstances", "maxTotalCores", "maxTotalRAMSize",
             "maxServerMeta", "maxTotalKeypairs", "maxServerGroups",
             "maxServerGroupMembers", "totalInstancesUsed",
             "totalCoresUsed", "totalRAMUsed", "totalServerGroupsUsed"]
    if not _at(v, "2.39"):
        names.append("maxImageMeta")
    if not _at(v, "2.57"):
        names += ["maxPersonality", "maxPersonalitySize"]
    if not _at(v, "2.36"):
        names += ["maxSecurityGroups", "maxSecurityGroupRules",
                  "maxTotalFloatingIps", "totalSecurityGroupsUsed",
                  "totalFloatingIpsUsed"]
    return obj({"limits": obj({
        "absolute": obj({name: INTEGER for name in names}),
        "rate": {"type": "array", "maxItems": 0}})})


# quota sets

class _Version:
    """Just enough of a request for the quota views' ``names``."""

    def __init__(self, version: V):
        self.api_version = version


def _quota_names(v: V) -> list[str]:
    return quota_views.names(_Version(v))


def quota_set(v: V, with_id: bool = True) -> dict:
    properties = {name: INTEGER for name in _quota_names(v)}
    if with_id:
        properties["id"] = STRING
    return obj({"quota_set": obj(properties)})


def quota_detail(v: V) -> dict:
    item = obj({"limit": INTEGER, "in_use": INTEGER, "reserved": INTEGER})
    properties = {name: item for name in _quota_names(v)}
    properties["id"] = STRING
    return obj({"quota_set": obj(properties)})


# availability zones

_ZONE_HOSTS = {"type": "object", "additionalProperties": {
    "type": "object", "additionalProperties": obj({
        "available": BOOLEAN, "active": BOOLEAN,
        "updated_at": NULL_STRING})}}
AVAILABILITY_ZONES = obj({"availabilityZoneInfo": array(obj({
    "zoneName": STRING, "zoneState": obj({"available": BOOLEAN}),
    "hosts": nullable(_ZONE_HOSTS)}))})


# services

def service_detail(v: V) -> dict:
    properties = {
        "id": STRING if _at(v, "2.53") else INTEGER,
        "binary": STRING, "host": STRING, "zone": NULL_STRING,
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "state": {"type": "string", "enum": ["up", "down"]},
        "updated_at": NULL_STRING, "disabled_reason": NULL_STRING,
    }
    if _at(v, "2.11"):
        properties["forced_down"] = BOOLEAN
    return obj(properties)


def service_update(v: V) -> dict:
    if _at(v, "2.53"):
        return _one("service", service_detail(v))
    return _one("service", obj({
        "host": STRING, "binary": STRING,
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled_reason": NULL_STRING, "forced_down": BOOLEAN},
        optional=("status", "disabled_reason", "forced_down")))


# hypervisors

def _hypervisor_id(v: V) -> dict:
    return STRING if _at(v, "2.53") else INTEGER


_HYPERVISOR_SERVERS = array(ANY_OBJECT)


def hypervisor_basic(v: V, servers: bool = True) -> dict:
    properties = {"id": _hypervisor_id(v), "hypervisor_hostname": STRING,
                  "state": {"type": "string", "enum": ["up", "down"]},
                  "status": {"type": "string",
                             "enum": ["enabled", "disabled"]}}
    if servers:
        properties["servers"] = _HYPERVISOR_SERVERS
    return obj(properties, optional=("servers",))


def hypervisor_detail(v: V) -> dict:
    schema = hypervisor_basic(v)
    properties = dict(schema["properties"])
    properties.update({
        "cpu_info": ANY_OBJECT if _at(v, "2.28") else NULL_STRING,
        "current_workload": NULL_INTEGER,
        "disk_available_least": NULL_INTEGER,
        "host_ip": NULL_STRING,
        "free_disk_gb": NULL_INTEGER, "free_ram_mb": NULL_INTEGER,
        "hypervisor_type": NULL_STRING,
        "hypervisor_version": NULL_INTEGER,
        "local_gb": INTEGER, "local_gb_used": INTEGER,
        "memory_mb": INTEGER, "memory_mb_used": INTEGER,
        "running_vms": NULL_INTEGER,
        "service": obj({"host": STRING, "id": _hypervisor_id(v),
                        "disabled_reason": NULL_STRING}),
        "vcpus": INTEGER, "vcpus_used": INTEGER,
    })
    return obj(properties, optional=("servers",))


HYPERVISOR_STATISTICS = obj({"hypervisor_statistics": obj({
    name: INTEGER for name in (
        "count", "vcpus", "memory_mb", "local_gb", "vcpus_used",
        "memory_mb_used", "local_gb_used", "running_vms",
        "current_workload", "free_ram_mb", "free_disk_gb",
        "disk_available_least")})})


# server groups

def server_group(v: V) -> dict:
    properties = {"id": STRING, "name": STRING, "members": STRINGS}
    if _at(v, "2.64"):
        properties["policy"] = STRING
        properties["rules"] = {"type": "object",
                               "additionalProperties": INTEGER}
    else:
        properties["policies"] = STRINGS
        properties["metadata"] = {"type": "object", "maxProperties": 0}
    if _at(v, "2.13"):
        properties["project_id"] = STRING
        properties["user_id"] = STRING
    return obj(properties)


# servers

_LINKED_ID = obj({"id": STRING, "links": LINKS})
_ADDRESSES = {"type": "object", "additionalProperties": array(
    {"type": "object", "properties": {"addr": STRING,
                                      "version": INTEGER},
     "required": ["addr", "version"]})}
_ADDRESSES_SHORT = {"type": "object", "additionalProperties": array(obj(
    {"addr": NULL_STRING, "version": NULL_INTEGER}))}
_STATUSES = ["ACTIVE", "BUILD", "DELETED", "ERROR", "HARD_REBOOT",
             "MIGRATING", "PASSWORD", "PAUSED", "REBOOT", "REBUILD",
             "RESCUE", "RESIZE", "REVERT_RESIZE", "SHELVED",
             "SHELVED_OFFLOADED", "SHUTOFF", "SOFT_DELETED", "SUSPENDED",
             "UNKNOWN", "VERIFY_RESIZE"]


def server_basic(v: V) -> dict:
    return obj({"id": STRING, "name": STRING, "links": LINKS})


def _server_flavor(v: V) -> dict:
    if _at(v, "2.47"):
        return obj({"vcpus": INTEGER, "ram": INTEGER, "disk": INTEGER,
                    "ephemeral": INTEGER, "swap": INTEGER,
                    "original_name": STRING, "extra_specs": STRING_MAP},
                   optional=("extra_specs",))
    return _LINKED_ID


def server_show(v: V, full: bool = True, groups: bool = False) -> dict:
    """A server as the views show it (``full``: as show and detail
    do)."""
    properties = {
        "id": STRING, "name": STRING,
        "status": {"type": "string", "enum": _STATUSES},
        "tenant_id": STRING, "user_id": STRING, "metadata": STRING_MAP,
        "hostId": STRING,
        "image": {"anyOf": [_LINKED_ID,
                            {"type": "string", "maxLength": 0}]},
        "flavor": _server_flavor(v),
        "created": NULL_STRING, "updated": NULL_STRING,
        "addresses": _ADDRESSES, "accessIPv4": STRING,
        "accessIPv6": STRING, "links": LINKS,
        "OS-DCF:diskConfig": {"type": "string",
                              "enum": ["AUTO", "MANUAL"]},
        "progress": INTEGER,
        "fault": obj({"code": INTEGER, "created": NULL_STRING,
                      "message": STRING, "details": STRING},
                     optional=("details",)),
    }
    optional = ["progress", "fault"]
    if _at(v, "2.9"):
        properties["locked"] = BOOLEAN
    if _at(v, "2.73"):
        properties["locked_reason"] = NULL_STRING
    if _at(v, "2.19"):
        properties["description"] = NULL_STRING
    if _at(v, "2.26"):
        properties["tags"] = STRINGS
    if _at(v, "2.63"):
        properties["trusted_image_certificates"] = nullable(STRINGS)
    if _at(v, "2.71") and groups:
        properties["server_groups"] = STRINGS
    if full:
        properties.update({
            "OS-EXT-AZ:availability_zone": STRING,
            "config_drive": STRING,
            "key_name": NULL_STRING,
            "OS-SRV-USG:launched_at": NULL_STRING,
            "OS-SRV-USG:terminated_at": NULL_STRING,
            "OS-EXT-STS:task_state": NULL_STRING,
            "OS-EXT-STS:vm_state": NULL_STRING,
            "OS-EXT-STS:power_state": NULL_INTEGER,
            "os-extended-volumes:volumes_attached": array(ANY_OBJECT),
            "security_groups": array(obj({"name": STRING})),
            "OS-EXT-SRV-ATTR:host": NULL_STRING,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": NULL_STRING,
            "OS-EXT-SRV-ATTR:instance_name": NULL_STRING,
        })
        # What the caller's policy lets it see.
        optional += ["security_groups", "OS-EXT-SRV-ATTR:host",
                     "OS-EXT-SRV-ATTR:hypervisor_hostname",
                     "OS-EXT-SRV-ATTR:instance_name"]
        if _at(v, "2.16"):
            properties["host_status"] = STRING
            optional.append("host_status")
        if _at(v, "2.3"):
            extended = {
                "OS-EXT-SRV-ATTR:reservation_id": NULL_STRING,
                "OS-EXT-SRV-ATTR:launch_index": NULL_INTEGER,
                "OS-EXT-SRV-ATTR:kernel_id": NULL_STRING,
                "OS-EXT-SRV-ATTR:ramdisk_id": NULL_STRING,
                "OS-EXT-SRV-ATTR:hostname": NULL_STRING,
                "OS-EXT-SRV-ATTR:root_device_name": NULL_STRING,
                "OS-EXT-SRV-ATTR:user_data": NULL_STRING,
            }
            properties.update(extended)
            optional += list(extended)
    if groups:
        optional.append("server_groups")
    return obj(properties, tuple(optional))


def server_created(v: V) -> dict:
    server = obj({"id": STRING, "links": LINKS,
                  "OS-DCF:diskConfig": {"type": "string",
                                        "enum": ["AUTO", "MANUAL"]},
                  "security_groups": array(obj({"name": STRING})),
                  "adminPass": STRING}, optional=("adminPass",))
    return {"oneOf": [obj({"server": server}),
                      obj({"reservation_id": STRING})]}


def server_updated(v: V) -> dict:
    return _one("server", server_show(v, full=_at(v, "2.75"),
                                      groups=True))


def server_rebuilt(v: V) -> dict:
    """A rebuild's answer: the server as an update shows it, with its
    new adminPass (and, from 2.57, its user_data)."""
    server = server_show(v, full=_at(v, "2.75"), groups=True)
    server = {**server, "properties": {
        **server["properties"], "adminPass": STRING,
        "user_data": NULL_STRING, "key_name": NULL_STRING}}
    return _one("server", server)


def server_action_done(v: V) -> dict:
    """A 200 of an action: console output, or a rescue's (or a pre-2.14
    evacuation's) admin password."""
    return {"anyOf": [obj({"output": STRING}), obj({"adminPass": STRING})]}


def server_action_accepted(v: V) -> dict:
    """A 202 of an action with a body: a snapshot's image id (2.45), a
    rebuilt server.  Most 202s have none."""
    return {"anyOf": [obj({"image_id": STRING}), server_rebuilt(v)]}


def instance_action(v: V, events: bool) -> dict:
    properties = {"action": STRING, "instance_uuid": STRING,
                  "request_id": STRING, "user_id": NULL_STRING,
                  "project_id": NULL_STRING, "start_time": NULL_STRING,
                  "message": NULL_STRING}
    if _at(v, "2.58"):
        properties["updated_at"] = NULL_STRING
    if not events:
        return obj(properties)
    event = {"event": STRING, "start_time": NULL_STRING,
             "finish_time": NULL_STRING, "result": NULL_STRING,
             "traceback": NULL_STRING}
    optional = ["traceback"]
    if _at(v, "2.62"):
        event["hostId"] = STRING
        event["host"] = NULL_STRING
        optional.append("host")
    properties["events"] = array(obj(event, tuple(optional)))
    return obj(properties, ("events",))


TOPOLOGY = obj({"nodes": array(ANY_OBJECT), "pagesize_kb": NULL_INTEGER})


# aggregates

def aggregate(v: V, members: bool = True) -> dict:
    properties = {"id": INTEGER, "name": STRING,
                  "availability_zone": NULL_STRING,
                  "created_at": NULL_STRING, "updated_at": NULL_STRING,
                  "deleted": BOOLEAN, "deleted_at": {"type": "null"}}
    if members:
        properties["hosts"] = STRINGS
        properties["metadata"] = {"type": "object",
                                  "additionalProperties": NULL_STRING}
    if _at(v, "2.41"):
        properties["uuid"] = STRING
    return obj(properties)


# the image proxy

def image_basic(v: V) -> dict:
    return obj({"id": STRING, "name": NULL_STRING, "links": LINKS})


def image_detail(v: V) -> dict:
    properties = dict(image_basic(v)["properties"])
    properties.update({
        "minRam": INTEGER, "minDisk": INTEGER,
        "metadata": {"type": "object"},
        "created": NULL_STRING, "updated": NULL_STRING,
        "status": STRING, "progress": INTEGER,
        "OS-EXT-IMG-SIZE:size": NULL_INTEGER,
        "server": _LINKED_ID,
        "OS-DCF:diskConfig": {"type": "string",
                              "enum": ["AUTO", "MANUAL"]},
    })
    return obj(properties, optional=("server", "OS-DCF:diskConfig"))


# hosts

HOSTS = obj({"hosts": array(obj({"host_name": STRING, "service": STRING,
                                  "zone": NULL_STRING}))})
HOST_SHOW = obj({"host": array(obj({"resource": obj({
    "host": STRING, "project": STRING, "cpu": INTEGER,
    "memory_mb": INTEGER, "disk_gb": INTEGER})}))})
HOST_UPDATE = obj({"host": STRING,
                   "status": {"type": "string",
                              "enum": ["enabled", "disabled"]}})


# extensions

EXTENSION = obj({"name": STRING, "alias": STRING, "description": STRING,
                 "namespace": STRING, "updated": STRING,
                 "links": array(ANY_OBJECT)})

# the shipped extensions: os-simple-tenant-usage, os-instance_usage_audit_log

_SERVER_USAGE = obj({
    "ended_at": NULL_STRING, "flavor": NULL_STRING, "hours": NUMBER,
    "instance_id": STRING, "local_gb": INTEGER, "memory_mb": INTEGER,
    "name": STRING, "started_at": NULL_STRING, "state": STRING,
    "tenant_id": STRING, "uptime": INTEGER, "vcpus": INTEGER})
_TENANT_USAGE = obj({
    "start": STRING, "stop": STRING, "tenant_id": STRING,
    "total_hours": NUMBER, "total_local_gb_usage": NUMBER,
    "total_memory_mb_usage": NUMBER, "total_vcpus_usage": NUMBER,
    "server_usages": array(_SERVER_USAGE)}, optional=("server_usages",))
_AUDIT_LOG = obj({
    "hosts_not_run": STRINGS, "log": ANY_OBJECT, "num_hosts": INTEGER,
    "num_hosts_done": INTEGER, "num_hosts_not_run": INTEGER,
    "num_hosts_running": INTEGER, "overall_status": STRING,
    "period_beginning": STRING, "period_ending": STRING,
    "total_errors": INTEGER, "total_instances": INTEGER})


# --- request bodies that are a choice of actions ----------------------------

def server_action_schemas(v: V) -> dict[str, dict]:
    """Every action ``POST /servers/{id}/action`` takes at ``v``, with
    the schema its handler validates with."""
    s = servers_schema
    schemas = {
        "reboot": s.reboot,
        "lock": s.lock_v273 if _at(v, "2.73") else s.lock,
        "unlock": s.unlock,
        "os-resetState": s.reset_state,
        "os-getConsoleOutput": s.get_console_output,
        "os-stop": s.stop, "os-start": s.start,
        "pause": s.pause, "unpause": s.unpause,
        "suspend": s.suspend, "resume": s.resume,
        "evacuate": s.evacuate,
        # moves
        "resize": s.resize, "confirmResize": s.confirm_resize,
        "revertResize": s.revert_resize, "migrate": s.migrate,
        "os-migrateLive": s.live_migrate,
        # snapshots and shelving
        "createImage": s.create_image, "createBackup": s.create_backup,
        "shelve": s.shelve, "shelveOffload": s.shelve_offload,
        "unshelve": s.unshelve,
        # the rest of a server's life
        "rebuild": s.rebuild_schema(v), "rescue": s.rescue,
        "unrescue": s.unrescue, "forceDelete": s.force_delete,
        "restore": s.restore, "changePassword": s.change_password,
    }
    if _at(v, "2.17"):
        schemas["trigger_crash_dump"] = s.trigger_crash_dump
    for name, (schema, low, _) in actions_controller.UNSUPPORTED.items():
        if low is None or _at(v, low):
            schemas[name] = schema
    return schemas


def flavor_action_schemas(v: V) -> dict[str, dict]:
    return {"addTenantAccess": access_schema.add_tenant_access,
            "removeTenantAccess": access_schema.remove_tenant_access}


def aggregate_action_schemas(v: V) -> dict[str, dict]:
    return {"add_host": aggregates_schema.add_host,
            "remove_host": aggregates_schema.remove_host,
            "set_metadata": aggregates_schema.set_metadata}


def one_of(choices) -> callable:
    """The body of an ``action`` route: one of the actions' schemas."""
    def body(v: V) -> dict:
        return {"oneOf": list(choices(v).values())}
    body.choices = choices
    return body


# --- query parameters -------------------------------------------------------

_NON_NEGATIVE = {"type": "integer", "minimum": 0}
LIMIT = Param("limit", _NON_NEGATIVE, "page size (capped at max_limit)")
MARKER = Param("marker", {"type": "string"}, "last item of the previous "
               "page")
SORT_DIR = Param("sort_dir", {"type": "string", "enum": ["asc", "desc"]})
_SERVER_QUERY = (
    LIMIT, MARKER, Param("name"), Param("status"), Param("image"),
    Param("flavor"), Param("ip"), Param("reservation_id"),
    Param("changes-since", {"type": "string", "format": "date-time"}),
    Param("changes-before", {"type": "string", "format": "date-time"},
          min_version="2.66"),
    Param("tags", min_version="2.26"),
    Param("not-tags", min_version="2.26"),
    Param("all_tenants"),
    Param("sort_key", {"type": "string",
                       "enum": ["created_at", "display_name", "uuid",
                                "updated_at", "vm_state", "host"]}),
    SORT_DIR,
)
_FLAVOR_QUERY = (
    LIMIT, MARKER, Param("minRam", _NON_NEGATIVE),
    Param("minDisk", _NON_NEGATIVE),
    Param("is_public", {"type": "string",
                        "enum": ["true", "false", "none"]}),
    Param("sort_key", {"type": "string",
                       "enum": ["flavorid", "name", "memory_mb", "vcpus",
                                "root_gb", "created_at"]}),
    SORT_DIR,
)
_USER_ID = Param("user_id", min_version="2.10")
_QUOTA_USER = Param("user_id")
_HYPERVISOR_QUERY = (
    Param("limit", _NON_NEGATIVE, min_version="2.33"),
    Param("marker", min_version="2.33"),
    Param("with_servers", {"type": "boolean"}, min_version="2.53"),
)
_IMAGE_QUERY = (LIMIT, MARKER, Param("name"), Param("status"),
                Param("minDisk", _NON_NEGATIVE),
                Param("minRam", _NON_NEGATIVE),
                Param("changes-since", {"type": "string",
                                        "format": "date-time"}),
                Param("server"), Param("type"))


# --- links (for stateful runs) ----------------------------------------------

def _link(operation_id: str, **parameters: str) -> dict:
    return {"operationId": operation_id, "parameters": parameters}


_SERVER_ID = "$response.body#/server/id"
_SERVER_LINKS = {
    "GetServer": _link("showServer", server_id=_SERVER_ID),
    "UpdateServer": _link("updateServer", server_id=_SERVER_ID),
    "DeleteServer": _link("deleteServer", server_id=_SERVER_ID),
    "ServerAction": _link("serverAction", server_id=_SERVER_ID),
    "ServerMetadata": _link("listServerMetadata", server_id=_SERVER_ID),
    "ServerActions": _link("listInstanceActions", server_id=_SERVER_ID),
    "ServerIPs": _link("listServerIPs", server_id=_SERVER_ID),
    "ServerTags": _link("listServerTags", server_id=_SERVER_ID),
    "ReplaceServerTags": _link("replaceServerTags", server_id=_SERVER_ID),
    "ServerPassword": _link("showServerPassword", server_id=_SERVER_ID),
    "ServerTopology": _link("showServerTopology", server_id=_SERVER_ID),
    "ReplaceServerMetadata": _link("replaceServerMetadata",
                                   server_id=_SERVER_ID),
}
_FLAVOR_ID = "$response.body#/flavor/id"
_KEYPAIR_NAME = "$response.body#/keypair/name"
_GROUP_ID = "$response.body#/server_group/id"
_AGGREGATE_ID = "$response.body#/aggregate/id"


# diagnostics, consoles, quota classes, external events

def diagnostics(v: V) -> dict:
    if not _at(v, "2.48"):
        # the driver's flat counters (cpu0_time, vda_read, memory, ...)
        return {"type": "object",
                "additionalProperties": {"type": ["integer", "number"]}}
    counter = NULL_INTEGER
    return obj({
        "state": STRING, "driver": STRING, "hypervisor": NULL_STRING,
        "hypervisor_os": NULL_STRING, "uptime": NULL_INTEGER,
        "config_drive": BOOLEAN, "num_cpus": INTEGER, "num_nics": INTEGER,
        "num_disks": INTEGER,
        "cpu_details": array(obj({"id": NULL_INTEGER, "time": counter,
                                  "utilisation": counter})),
        "disk_details": array(obj({name: counter for name in (
            "read_bytes", "read_requests", "write_bytes",
            "write_requests", "errors_count")})),
        "nic_details": array(obj({
            "mac_address": NULL_STRING,
            **{name: counter for name in (
                "rx_octets", "rx_errors", "rx_drop", "rx_packets",
                "rx_rate", "tx_octets", "tx_errors", "tx_drop",
                "tx_packets", "tx_rate")}})),
        "memory_details": obj({"maximum": NULL_INTEGER,
                               "used": NULL_INTEGER}),
    })


def remote_console(v: V) -> dict:
    return obj({"remote_console": obj({
        "protocol": STRING, "type": STRING, "url": STRING})})


def console_connect_info(v: V) -> dict:
    properties = {"instance_uuid": STRING, "host": NULL_STRING,
                  "port": NULL_INTEGER,
                  "internal_access_path": NULL_STRING}
    if _at(v, "2.99"):
        properties["tls_port"] = NULL_INTEGER
    return obj({"console": obj(properties)})


def quota_class_set(v: V, with_id: bool = True) -> dict:
    properties = {name: INTEGER
                  for name in quota_class_views.update_names(str(v))}
    if with_id:
        properties["id"] = STRING
    return obj({"quota_class_set": obj(properties)})


def external_events_request(v: V) -> dict:
    return events_schema.create(events_schema.names_at(
        lambda since: _at(v, since)))


EXTERNAL_EVENTS = obj({"events": array(obj({
    "server_uuid": STRING, "name": STRING, "status": STRING,
    "tag": STRING, "code": INTEGER}, optional=("tag",)))})


# --- the table --------------------------------------------------------------

_BODY = (413, 415)


def operations() -> list[Operation]:
    """Every operation of the Compute API, whatever the microversion."""
    s = servers_schema
    return [
        # flavors
        Operation("GET", "/flavors", "listFlavors", "List flavors",
                  {200: lambda v: _list_body("flavors", flavor_basic(v),
                                             "flavors_links")},
                  query=_FLAVOR_QUERY, tag="flavors"),
        Operation("GET", "/flavors/detail", "listFlavorsDetail",
                  "List flavors with details",
                  {200: lambda v: _list_body("flavors", flavor_detail(v),
                                             "flavors_links")},
                  query=_FLAVOR_QUERY, tag="flavors"),
        Operation("GET", "/flavors/<flavor_id>", "showFlavor",
                  "Show a flavor",
                  {200: lambda v: _one("flavor", flavor_detail(v))},
                  tag="flavors"),
        Operation("POST", "/flavors", "createFlavor", "Create a flavor",
                  {200: lambda v: _one("flavor", flavor_detail(v))},
                  request=versioned(
                      ("2.102", None, flavors_schema.create_v2102),
                      ("2.55", "2.101", flavors_schema.create_v255),
                      (None, "2.54", flavors_schema.create)),
                  errors=(409,) + _BODY, tag="flavors",
                  links={200: {
                      "GetFlavor": _link("showFlavor",
                                         flavor_id=_FLAVOR_ID),
                      "FlavorExtraSpecs": _link("listFlavorExtraSpecs",
                                                flavor_id=_FLAVOR_ID),
                      "DeleteFlavor": _link("deleteFlavor",
                                            flavor_id=_FLAVOR_ID)}}),
        Operation("PUT", "/flavors/<flavor_id>", "updateFlavor",
                  "Update a flavor's description",
                  {200: lambda v: _one("flavor", flavor_detail(v))},
                  request=flavors_schema.update_v255, min_version="2.55",
                  errors=_BODY, tag="flavors"),
        Operation("DELETE", "/flavors/<flavor_id>", "deleteFlavor",
                  "Delete a flavor", {202: None}, tag="flavors"),
        # flavor extra specs
        Operation("GET", "/flavors/<flavor_id>/os-extra_specs",
                  "listFlavorExtraSpecs", "List a flavor's extra specs",
                  {200: obj({"extra_specs": STRING_MAP})},
                  tag="flavors"),
        Operation("POST", "/flavors/<flavor_id>/os-extra_specs",
                  "createFlavorExtraSpecs", "Set extra specs",
                  {200: obj({"extra_specs": STRING_MAP})},
                  request=specs_schema.create, errors=(409,) + _BODY,
                  tag="flavors"),
        Operation("GET", "/flavors/<flavor_id>/os-extra_specs/<key>",
                  "showFlavorExtraSpec", "Show an extra spec",
                  {200: SINGLE_STRING_MAP}, tag="flavors"),
        Operation("PUT", "/flavors/<flavor_id>/os-extra_specs/<key>",
                  "updateFlavorExtraSpec", "Set an extra spec",
                  {200: SINGLE_STRING_MAP}, request=specs_schema.update,
                  errors=(409,) + _BODY, tag="flavors"),
        Operation("DELETE", "/flavors/<flavor_id>/os-extra_specs/<key>",
                  "deleteFlavorExtraSpec", "Delete an extra spec",
                  {200: None}, tag="flavors"),
        # flavor access
        Operation("GET", "/flavors/<flavor_id>/os-flavor-access",
                  "listFlavorAccess", "List the projects of a private "
                  "flavor", {200: FLAVOR_ACCESS}, tag="flavors"),
        Operation("POST", "/flavors/<flavor_id>/action", "flavorAction",
                  "Add or remove a project's access to a flavor",
                  {200: FLAVOR_ACCESS},
                  request=one_of(flavor_action_schemas),
                  errors=(409,) + _BODY, tag="flavors"),
        # key pairs
        Operation("GET", "/os-keypairs", "listKeypairs", "List key pairs",
                  {200: lambda v: _list_body(
                      "keypairs", keypair_listed(v),
                      "keypairs_links" if _at(v, "2.35") else None)},
                  query=(_USER_ID,
                         Param("limit", _NON_NEGATIVE, min_version="2.35"),
                         Param("marker", min_version="2.35")),
                  tag="keypairs"),
        Operation("GET", "/os-keypairs/<name>", "showKeypair",
                  "Show a key pair",
                  {200: lambda v: _one("keypair", keypair_show(v))},
                  query=(_USER_ID,), tag="keypairs"),
        Operation("POST", "/os-keypairs", "createKeypair",
                  "Import or generate a key pair",
                  {200: lambda v: OMIT if _at(v, "2.2") else
                   _one("keypair", keypair_created(v)),
                   201: lambda v: _one("keypair", keypair_created(v))
                   if _at(v, "2.2") else OMIT},
                  request=versioned(
                      ("2.92", None, keypairs_schema.create_v292),
                      ("2.10", "2.91", keypairs_schema.create_v210),
                      ("2.2", "2.9", keypairs_schema.create_v22),
                      (None, "2.1", keypairs_schema.create)),
                  errors=(409,) + _BODY, tag="keypairs",
                  links={201: {
                      "GetKeypair": _link("showKeypair",
                                          name=_KEYPAIR_NAME),
                      "DeleteKeypair": _link("deleteKeypair",
                                             name=_KEYPAIR_NAME)}}),
        Operation("DELETE", "/os-keypairs/<name>", "deleteKeypair",
                  "Delete a key pair",
                  {202: lambda v: OMIT if _at(v, "2.2") else None,
                   204: lambda v: None if _at(v, "2.2") else OMIT},
                  query=(_USER_ID,), tag="keypairs"),
        # limits and quotas
        Operation("GET", "/limits", "showLimits", "Show the project's "
                  "limits and usage", {200: limits_absolute},
                  query=(Param("tenant_id"),), tag="limits"),
        Operation("GET", "/os-quota-sets/<project_id>", "showQuotaSet",
                  "Show a project's quotas", {200: quota_set},
                  query=(_QUOTA_USER,), tag="quotas"),
        Operation("GET", "/os-quota-sets/<project_id>/detail",
                  "showQuotaSetDetail", "Show quotas with usage",
                  {200: quota_detail}, query=(_QUOTA_USER,),
                  tag="quotas"),
        Operation("GET", "/os-quota-sets/<project_id>/defaults",
                  "showQuotaSetDefaults", "Show the default quotas",
                  {200: quota_set}, tag="quotas"),
        Operation("PUT", "/os-quota-sets/<project_id>", "updateQuotaSet",
                  "Update a project's quotas",
                  {200: lambda v: quota_set(v, with_id=False)},
                  request=versioned(
                      ("2.57", None, quota_schema.update_v257),
                      ("2.36", "2.56", quota_schema.update_v236),
                      (None, "2.35", quota_schema.update)),
                  query=(_QUOTA_USER,), errors=_BODY, tag="quotas"),
        Operation("DELETE", "/os-quota-sets/<project_id>",
                  "deleteQuotaSet", "Revert a project's quotas to the "
                  "defaults", {202: None}, query=(_QUOTA_USER,),
                  tag="quotas"),
        # availability zones
        Operation("GET", "/os-availability-zone", "listAvailabilityZones",
                  "List availability zones", {200: AVAILABILITY_ZONES},
                  tag="availability-zones"),
        Operation("GET", "/os-availability-zone/detail",
                  "listAvailabilityZonesDetail",
                  "List availability zones with their hosts",
                  {200: AVAILABILITY_ZONES}, tag="availability-zones"),
        # services
        Operation("GET", "/os-services", "listServices", "List services",
                  {200: lambda v: _list_body("services",
                                             service_detail(v))},
                  query=(Param("host"), Param("binary")),
                  tag="services"),
        Operation("PUT", "/os-services/<service_id>", "updateService",
                  "Enable, disable or force down a service (before "
                  "2.53 ``service_id`` is the action: enable, disable, "
                  "disable-log-reason, force-down)",
                  {200: service_update},
                  request=lambda v: services_schema.update_v253
                  if _at(v, "2.53") else {"oneOf": [
                      services_schema.service_update,
                      services_schema.force_down]},
                  errors=_BODY, tag="services"),
        Operation("DELETE", "/os-services/<service_id>", "deleteService",
                  "Delete a service", {204: None}, errors=(409,),
                  tag="services"),
        # hypervisors
        Operation("GET", "/os-hypervisors", "listHypervisors",
                  "List hypervisors",
                  {200: lambda v: _list_body(
                      "hypervisors", hypervisor_basic(v),
                      "hypervisors_links")},
                  query=_HYPERVISOR_QUERY + (Param(
                      "hypervisor_hostname_pattern",
                      min_version="2.53"),), tag="hypervisors"),
        Operation("GET", "/os-hypervisors/detail",
                  "listHypervisorsDetail", "List hypervisors with "
                  "details",
                  {200: lambda v: _list_body(
                      "hypervisors", hypervisor_detail(v),
                      "hypervisors_links")},
                  query=_HYPERVISOR_QUERY + (Param(
                      "hypervisor_hostname_pattern",
                      min_version="2.53"),), tag="hypervisors"),
        Operation("GET", "/os-hypervisors/statistics",
                  "showHypervisorStatistics", "Hypervisor statistics",
                  {200: HYPERVISOR_STATISTICS}, tag="hypervisors"),
        Operation("GET", "/os-hypervisors/<hypervisor_id>",
                  "showHypervisor", "Show a hypervisor",
                  {200: lambda v: _one("hypervisor",
                                       hypervisor_detail(v))},
                  query=(Param("with_servers", {"type": "boolean"},
                               min_version="2.53"),), tag="hypervisors"),
        Operation("GET", "/os-hypervisors/<hypervisor_id>/uptime",
                  "showHypervisorUptime", "A hypervisor's uptime (not "
                  "reported by the agents: 501)", {},
                  errors=(501, 503, 409), tag="hypervisors"),
        Operation("GET", "/os-hypervisors/<pattern>/search",
                  "searchHypervisors", "Hypervisors by host name "
                  "pattern",
                  {200: lambda v: _list_body(
                      "hypervisors", hypervisor_basic(v, False))},
                  max_version="2.52", tag="hypervisors"),
        Operation("GET", "/os-hypervisors/<pattern>/servers",
                  "listHypervisorServers", "Hypervisors by host name "
                  "pattern, with their servers",
                  {200: lambda v: _list_body(
                      "hypervisors", hypervisor_basic(v))},
                  max_version="2.52", tag="hypervisors"),
        # server groups
        Operation("POST", "/os-server-groups", "createServerGroup",
                  "Create a server group",
                  {200: lambda v: _one("server_group", server_group(v))},
                  request=versioned(
                      ("2.64", None, groups_schema.create_v264),
                      ("2.15", "2.63", groups_schema.create_v215),
                      (None, "2.14", groups_schema.create)),
                  errors=(409,) + _BODY, tag="server-groups",
                  links={200: {
                      "GetServerGroup": _link("showServerGroup",
                                              group_id=_GROUP_ID),
                      "DeleteServerGroup": _link("deleteServerGroup",
                                                 group_id=_GROUP_ID)}}),
        Operation("GET", "/os-server-groups", "listServerGroups",
                  "List server groups",
                  {200: lambda v: _list_body("server_groups",
                                             server_group(v))},
                  query=(Param("all_projects"),
                         Param("limit", _NON_NEGATIVE),
                         Param("offset", _NON_NEGATIVE)),
                  tag="server-groups"),
        Operation("GET", "/os-server-groups/<group_id>",
                  "showServerGroup", "Show a server group",
                  {200: lambda v: _one("server_group", server_group(v))},
                  tag="server-groups"),
        Operation("DELETE", "/os-server-groups/<group_id>",
                  "deleteServerGroup", "Delete a server group",
                  {204: None}, tag="server-groups"),
        # servers
        Operation("GET", "/servers", "listServers", "List servers",
                  {200: lambda v: _list_body("servers", server_basic(v),
                                             "servers_links")},
                  query=_SERVER_QUERY, tag="servers"),
        Operation("GET", "/servers/detail", "listServersDetail",
                  "List servers with details",
                  {200: lambda v: _list_body("servers", server_show(v),
                                             "servers_links")},
                  query=_SERVER_QUERY, tag="servers"),
        Operation("GET", "/servers/<server_id>", "showServer",
                  "Show a server",
                  {200: lambda v: _one("server", server_show(
                      v, groups=True))}, tag="servers"),
        Operation("POST", "/servers", "createServer", "Create servers",
                  {202: server_created}, request=s.create,
                  errors=(409, 501) + _BODY, tag="servers",
                  links={202: _SERVER_LINKS}),
        Operation("PUT", "/servers/<server_id>", "updateServer",
                  "Update a server", {200: server_updated},
                  request=s.update, errors=(409,) + _BODY,
                  tag="servers"),
        Operation("DELETE", "/servers/<server_id>", "deleteServer",
                  "Delete a server", {204: None}, errors=(409,),
                  tag="servers"),
        Operation("POST", "/servers/<server_id>/action", "serverAction",
                  "Run a server action",
                  {202: server_action_accepted, 200: server_action_done,
                   204: None},
                  request=one_of(server_action_schemas),
                  errors=(409, 501) + _BODY, tag="servers"),
        # server metadata
        Operation("GET", "/servers/<server_id>/metadata",
                  "listServerMetadata", "Show a server's metadata",
                  {200: obj({"metadata": STRING_MAP})}, tag="servers"),
        Operation("GET", "/servers/<server_id>/metadata/<key>",
                  "showServerMetadataItem", "Show a metadata item",
                  {200: obj({"meta": SINGLE_STRING_MAP})},
                  tag="servers"),
        Operation("POST", "/servers/<server_id>/metadata",
                  "createServerMetadata", "Merge metadata",
                  {200: obj({"metadata": STRING_MAP})},
                  request=s.metadata_all, errors=(409,) + _BODY,
                  tag="servers"),
        Operation("PUT", "/servers/<server_id>/metadata",
                  "replaceServerMetadata", "Replace metadata",
                  {200: obj({"metadata": STRING_MAP})},
                  request=s.metadata_all, errors=(409,) + _BODY,
                  tag="servers"),
        Operation("PUT", "/servers/<server_id>/metadata/<key>",
                  "updateServerMetadataItem", "Set a metadata item",
                  {200: obj({"meta": SINGLE_STRING_MAP})},
                  request=s.metadata_item, errors=(409,) + _BODY,
                  tag="servers"),
        Operation("DELETE", "/servers/<server_id>/metadata/<key>",
                  "deleteServerMetadataItem", "Delete a metadata item",
                  {204: None}, errors=(409,), tag="servers"),
        # server tags
        Operation("GET", "/servers/<server_id>/tags", "listServerTags",
                  "List a server's tags", {200: obj({"tags": STRINGS})},
                  min_version="2.26", tag="servers"),
        Operation("GET", "/servers/<server_id>/tags/<tag>",
                  "checkServerTag", "Check a tag", {204: None},
                  min_version="2.26", tag="servers"),
        Operation("PUT", "/servers/<server_id>/tags", "replaceServerTags",
                  "Replace all tags", {200: obj({"tags": STRINGS})},
                  request=s.tags_all, min_version="2.26",
                  errors=(409,) + _BODY, tag="servers"),
        Operation("PUT", "/servers/<server_id>/tags/<tag>",
                  "addServerTag", "Add a tag", {201: None, 204: None},
                  min_version="2.26", errors=(409,), tag="servers"),
        Operation("DELETE", "/servers/<server_id>/tags",
                  "deleteServerTags", "Delete all tags", {204: None},
                  min_version="2.26", errors=(409,), tag="servers"),
        Operation("DELETE", "/servers/<server_id>/tags/<tag>",
                  "deleteServerTag", "Delete a tag", {204: None},
                  min_version="2.26", errors=(409,), tag="servers"),
        # instance actions, ips, topology, password
        Operation("GET", "/servers/<server_id>/os-instance-actions",
                  "listInstanceActions", "List what was done to a server",
                  {200: lambda v: obj({
                      "instanceActions": array(instance_action(v, False)),
                      "links": LINKS}, optional=("links",))},
                  query=(Param("limit", _NON_NEGATIVE, min_version="2.58"),
                         Param("marker", min_version="2.58"),
                         Param("changes-since",
                               {"type": "string", "format": "date-time"},
                               min_version="2.58"),
                         Param("changes-before",
                               {"type": "string", "format": "date-time"},
                               min_version="2.66")),
                  tag="servers"),
        Operation("GET",
                  "/servers/<server_id>/os-instance-actions/<request_id>",
                  "showInstanceAction", "Show an action and its events",
                  {200: lambda v: _one("instanceAction",
                                       instance_action(v, True))},
                  tag="servers"),
        Operation("GET", "/servers/<server_id>/ips", "listServerIPs",
                  "List a server's addresses",
                  {200: obj({"addresses": _ADDRESSES_SHORT})},
                  tag="servers"),
        Operation("GET", "/servers/<server_id>/ips/<network>",
                  "showServerNetworkIPs", "A server's addresses on one "
                  "network",
                  {200: {**_ADDRESSES_SHORT, "minProperties": 1,
                         "maxProperties": 1}}, tag="servers"),
        Operation("GET", "/servers/<server_id>/topology",
                  "showServerTopology", "A server's NUMA topology",
                  {200: TOPOLOGY}, min_version="2.78", tag="servers"),
        Operation("GET", "/servers/<server_id>/os-server-password",
                  "showServerPassword", "The encrypted admin password",
                  {200: obj({"password": STRING})}, tag="servers"),
        Operation("DELETE", "/servers/<server_id>/os-server-password",
                  "clearServerPassword", "Clear the admin password",
                  {204: None}, tag="servers"),
        # aggregates
        Operation("GET", "/os-aggregates", "listAggregates",
                  "List host aggregates",
                  {200: lambda v: _list_body("aggregates", aggregate(v))},
                  tag="aggregates"),
        Operation("POST", "/os-aggregates", "createAggregate",
                  "Create a host aggregate",
                  {200: lambda v: _one("aggregate", aggregate(v, False))},
                  request=aggregates_schema.create, errors=(409,) + _BODY,
                  tag="aggregates",
                  links={200: {
                      "GetAggregate": _link("showAggregate",
                                            aggregate_id=_AGGREGATE_ID),
                      "DeleteAggregate": _link(
                          "deleteAggregate",
                          aggregate_id=_AGGREGATE_ID)}}),
        Operation("GET", "/os-aggregates/<aggregate_id>", "showAggregate",
                  "Show a host aggregate",
                  {200: lambda v: _one("aggregate", aggregate(v))},
                  tag="aggregates"),
        Operation("PUT", "/os-aggregates/<aggregate_id>",
                  "updateAggregate", "Update a host aggregate",
                  {200: lambda v: _one("aggregate", aggregate(v))},
                  request=aggregates_schema.update, errors=(409,) + _BODY,
                  tag="aggregates"),
        Operation("DELETE", "/os-aggregates/<aggregate_id>",
                  "deleteAggregate", "Delete a host aggregate",
                  {200: None}, errors=(409,), tag="aggregates"),
        Operation("POST", "/os-aggregates/<aggregate_id>/action",
                  "aggregateAction", "Add or remove a host, set metadata",
                  {200: lambda v: _one("aggregate", aggregate(v))},
                  request=one_of(aggregate_action_schemas),
                  errors=(409,) + _BODY, tag="aggregates"),
        Operation("POST", "/os-aggregates/<aggregate_id>/images",
                  "precacheAggregateImages", "Pre-cache images on the "
                  "aggregate's hosts", {202: None},
                  request=aggregates_schema.images, min_version="2.81",
                  errors=(409,) + _BODY, tag="aggregates"),
        # diagnostics, consoles
        Operation("GET", "/servers/<server_id>/diagnostics",
                  "showServerDiagnostics", "A server's counters, read by "
                  "its agent", {200: diagnostics}, errors=(409, 501),
                  tag="servers"),
        Operation("POST", "/servers/<server_id>/remote-consoles",
                  "createRemoteConsole", "A URL for a server's console",
                  {200: remote_console},
                  request=versioned(
                      ("2.99", None, consoles_schema.create_v299),
                      ("2.8", "2.98", consoles_schema.create_v28),
                      ("2.6", "2.7", consoles_schema.create_v26)),
                  min_version="2.6", errors=(409, 501) + _BODY,
                  tag="consoles"),
        Operation("GET", "/os-console-auth-tokens/<token>",
                  "showConsoleAuthToken", "What a console token connects "
                  "to", {200: console_connect_info}, tag="consoles"),
        # volumes and shares: no such service in this cloud
        Operation("GET", "/servers/<server_id>/os-volume_attachments",
                  "listVolumeAttachments", "A server's volume attachments "
                  "(none: there is no block storage service)",
                  {200: obj({"volumeAttachments": array(ANY_OBJECT)})},
                  query=(Param("limit", _NON_NEGATIVE),
                         Param("offset", _NON_NEGATIVE)),
                  tag="volumes"),
        Operation("GET",
                  "/servers/<server_id>/os-volume_attachments/<volume_id>",
                  "showVolumeAttachment", "A volume attachment (404: "
                  "there is none)", {}, tag="volumes"),
        Operation("PUT",
                  "/servers/<server_id>/os-volume_attachments/<volume_id>",
                  "updateVolumeAttachment", "Swap a volume (404: there "
                  "is none)", {}, tag="volumes"),
        Operation("DELETE",
                  "/servers/<server_id>/os-volume_attachments/<volume_id>",
                  "deleteVolumeAttachment", "Detach a volume (404: there "
                  "is none)", {}, tag="volumes"),
        Operation("POST", "/servers/<server_id>/os-volume_attachments",
                  "createVolumeAttachment", "Attach a volume (404: no "
                  "volume service knows it)", {},
                  request=absent_controller.ATTACH, errors=_BODY,
                  tag="volumes"),
        Operation("GET", "/servers/<server_id>/shares", "listServerShares",
                  "A server's shares (none: there is no shared file "
                  "system service)", {200: obj({"shares": array(ANY_OBJECT)})},
                  min_version="2.97", tag="shares"),
        Operation("GET", "/servers/<server_id>/shares/<share_id>",
                  "showServerShare", "A share attachment (404: there is "
                  "none)", {}, min_version="2.97", tag="shares"),
        Operation("DELETE", "/servers/<server_id>/shares/<share_id>",
                  "deleteServerShare", "Detach a share (404: there is "
                  "none)", {}, min_version="2.97", tag="shares"),
        Operation("POST", "/servers/<server_id>/shares",
                  "createServerShare", "Attach a share (404: no shared "
                  "file system service knows it)", {},
                  request=absent_controller.ATTACH_SHARE, errors=_BODY,
                  min_version="2.97", tag="shares"),
        # migrations
        Operation("GET", "/os-migrations", "listMigrations",
                  "List migrations (admin)",
                  {200: lambda v: obj({
                      "migrations": array(ANY_OBJECT),
                      "migrations_links": LINKS},
                      optional=("migrations_links",))},
                  query=(Param("host"), Param("status"),
                         Param("instance_uuid"), Param("source_compute"),
                         Param("migration_type", min_version="2.23"),
                         Param("hidden"),
                         Param("limit", _NON_NEGATIVE, min_version="2.59"),
                         Param("marker", min_version="2.59"),
                         Param("changes-since",
                               {"type": "string", "format": "date-time"},
                               min_version="2.59"),
                         Param("changes-before",
                               {"type": "string", "format": "date-time"},
                               min_version="2.66"),
                         Param("user_id", min_version="2.80"),
                         Param("project_id", min_version="2.80")),
                  tag="migrations"),
        Operation("GET", "/servers/<server_id>/migrations",
                  "listServerMigrations", "A server's running live "
                  "migrations",
                  {200: obj({"migrations": array(ANY_OBJECT)})},
                  min_version="2.23", tag="migrations"),
        Operation("GET", "/servers/<server_id>/migrations/<migration_id>",
                  "showServerMigration", "A running live migration",
                  {200: obj({"migration": ANY_OBJECT})},
                  min_version="2.23", tag="migrations"),
        Operation("POST",
                  "/servers/<server_id>/migrations/<migration_id>/action",
                  "forceCompleteMigration", "Force a live migration to "
                  "complete",
                  {202: None}, request=migrations_controller.FORCE_COMPLETE,
                  min_version="2.22", errors=(409, 501) + _BODY,
                  tag="migrations"),
        Operation("DELETE",
                  "/servers/<server_id>/migrations/<migration_id>",
                  "abortMigration", "Abort a running live migration",
                  {202: None}, min_version="2.24", errors=(409, 501),
                  tag="migrations"),
        # quota classes, external events
        Operation("GET", "/os-quota-class-sets/<class_name>",
                  "showQuotaClassSet", "Show a quota class",
                  {200: quota_class_set}, tag="quotas"),
        Operation("PUT", "/os-quota-class-sets/<class_name>",
                  "updateQuotaClassSet", "Update a quota class",
                  {200: lambda v: quota_class_set(v, with_id=False)},
                  request=versioned(
                      ("2.57", None, quota_class_schema.update_v257),
                      ("2.50", "2.56", quota_class_schema.update_v250),
                      (None, "2.49", quota_class_schema.update)),
                  errors=_BODY, tag="quotas"),
        Operation("POST", "/os-server-external-events",
                  "createServerExternalEvents", "Tell servers of "
                  "events from other services",
                  {200: EXTERNAL_EVENTS, 207: EXTERNAL_EVENTS},
                  request=external_events_request, errors=_BODY,
                  tag="servers"),
        # the image proxy (until 2.35)
        Operation("GET", "/images", "listImages", "List images",
                  {200: lambda v: _list_body("images", image_basic(v),
                                             "images_links")},
                  query=_IMAGE_QUERY, max_version="2.35", tag="images"),
        Operation("GET", "/images/detail", "listImagesDetail",
                  "List images with details",
                  {200: lambda v: _list_body("images", image_detail(v),
                                             "images_links")},
                  query=_IMAGE_QUERY, max_version="2.35", tag="images"),
        Operation("GET", "/images/<image_id>", "showImage",
                  "Show an image",
                  {200: lambda v: _one("image", image_detail(v))},
                  max_version="2.35", tag="images"),
        Operation("DELETE", "/images/<image_id>", "deleteImage",
                  "Delete an image", {204: None}, max_version="2.35",
                  tag="images"),
        Operation("GET", "/images/<image_id>/metadata",
                  "listImageMetadata", "Show an image's metadata",
                  {200: obj({"metadata": ANY_OBJECT})},
                  max_version="2.35", tag="images"),
        Operation("GET", "/images/<image_id>/metadata/<key>",
                  "showImageMetadataItem", "Show an image metadata item",
                  {200: obj({"meta": {"type": "object",
                                      "minProperties": 1,
                                      "maxProperties": 1}})},
                  max_version="2.35", tag="images"),
        Operation("POST", "/images/<image_id>/metadata",
                  "createImageMetadata", "Merge image metadata",
                  {200: obj({"metadata": ANY_OBJECT})},
                  request=s.metadata_all, max_version="2.35",
                  errors=_BODY, tag="images"),
        Operation("PUT", "/images/<image_id>/metadata",
                  "replaceImageMetadata", "Replace image metadata",
                  {200: obj({"metadata": ANY_OBJECT})},
                  request=s.metadata_all, max_version="2.35",
                  errors=_BODY, tag="images"),
        Operation("PUT", "/images/<image_id>/metadata/<key>",
                  "updateImageMetadataItem", "Set an image metadata item",
                  {200: obj({"meta": SINGLE_STRING_MAP})},
                  request=s.metadata_item, max_version="2.35",
                  errors=_BODY, tag="images"),
        Operation("DELETE", "/images/<image_id>/metadata/<key>",
                  "deleteImageMetadataItem", "Delete an image metadata "
                  "item", {204: None}, max_version="2.35", tag="images"),
        # the loaded extensions (Twisted plugins)
        Operation("GET", "/extensions", "listExtensions",
                  "List the loaded Compute API extensions",
                  {200: obj({"extensions": array(EXTENSION)})},
                  tag="extensions"),
        Operation("GET", "/extensions/<alias>", "showExtension",
                  "Show a loaded Compute API extension",
                  {200: obj({"extension": EXTENSION})}, tag="extensions"),
        # hosts (until 2.42)
        Operation("GET", "/os-hosts", "listHosts", "List hosts",
                  {200: HOSTS}, query=(Param("zone"),),
                  max_version=hosts_controller.MAX_VERSION, tag="hosts"),
        Operation("GET", "/os-hosts/<host>", "showHost",
                  "Show a host's resources", {200: HOST_SHOW},
                  max_version=hosts_controller.MAX_VERSION, tag="hosts"),
        Operation("PUT", "/os-hosts/<host>", "updateHost",
                  "Enable or disable a host", {200: HOST_UPDATE},
                  request=hosts_controller._UPDATE, errors=(501,) + _BODY,
                  max_version=hosts_controller.MAX_VERSION, tag="hosts"),
        Operation("GET", "/os-hosts/<host>/<action>", "hostPowerAction",
                  "Reboot, shut down or start up a host (501: no driver "
                  "does it)", {}, errors=(501,),
                  max_version=hosts_controller.MAX_VERSION, tag="hosts"),
    ]


#: Fault statuses every Compute API operation may answer: a bad or
#: unacceptable microversion (400, 406), no or a bad token (401), the
#: policy (403), an unknown resource or project id in the URL (404), a
#: method the route does not serve (405).
COMMON_ERRORS = (400, 401, 403, 404, 405, 406)


_USAGE_QUERY = (
    Param("start", {"type": "string"}, "ISO 8601 time (default: now)"),
    Param("end", {"type": "string"}, "ISO 8601 time (default: now)"),
    Param("detailed", {"type": "string", "enum": ["0", "1"]}),
    Param("limit", _NON_NEGATIVE, min_version="2.40"),
    Param("marker", min_version="2.40"),
)


def extension_operations() -> dict[str, list[Operation]]:
    """The operations of the extensions shipped in the tree, by alias
    (documented while the extension is installed: an out-of-tree one
    documents its own with ``IComputeExtension.openapi_operations``)."""
    return {
        "os-simple-tenant-usage": [
            Operation("GET", "/os-simple-tenant-usage", "listTenantUsages",
                      "Usage of every project over start..end (admin)",
                      {200: obj({"tenant_usages": array(_TENANT_USAGE),
                                 "tenant_usages_links": LINKS},
                                optional=("tenant_usages_links",))},
                      query=_USAGE_QUERY, tag="os-simple-tenant-usage"),
            Operation("GET", "/os-simple-tenant-usage/<tenant_id>",
                      "showTenantUsage",
                      "One project's usage over start..end",
                      {200: obj({"tenant_usage": {"anyOf": [
                          _TENANT_USAGE, obj({})]},
                          "tenant_usage_links": LINKS},
                          optional=("tenant_usage_links",))},
                      query=_USAGE_QUERY, tag="os-simple-tenant-usage"),
        ],
        "os-instance_usage_audit_log": [
            Operation("GET", "/os-instance_usage_audit_log",
                      "listInstanceUsageAuditLogs",
                      "The usage audit of the last whole month (admin)",
                      {200: obj({"instance_usage_audit_logs": _AUDIT_LOG})},
                      tag="os-instance_usage_audit_log"),
            Operation("GET", "/os-instance_usage_audit_log/<before>",
                      "showInstanceUsageAuditLog",
                      "The usage audit of the month before a time (admin)",
                      {200: obj({"instance_usage_audit_log": _AUDIT_LOG})},
                      tag="os-instance_usage_audit_log"),
        ],
    }
