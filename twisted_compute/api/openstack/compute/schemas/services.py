"""Schemas of service updates."""

from twisted_compute.api.openstack.compute.schemas import boolean

_host_binary = {"host": {"type": "string", "minLength": 1,
                         "maxLength": 255},
                "binary": {"type": "string", "minLength": 1,
                           "maxLength": 255}}
_reason = {"type": "string", "minLength": 1, "maxLength": 255}

#: PUT /os-services/{enable,disable,disable-log-reason} (before 2.53)
service_update = {
    "type": "object",
    "properties": {**_host_binary, "disabled_reason": _reason},
    "required": ["host", "binary"],
    "additionalProperties": False,
}

#: PUT /os-services/force-down (2.11 to 2.52)
force_down = {
    "type": "object",
    "properties": {**_host_binary, "forced_down": boolean},
    "required": ["host", "binary", "forced_down"],
    "additionalProperties": False,
}

#: PUT /os-services/{uuid} (2.53)
update_v253 = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled_reason": _reason,
        "forced_down": boolean,
    },
    "additionalProperties": False,
}
