"""Schemas of host aggregate bodies (the same at every microversion up to
2.79)."""

from twisted_compute.api.openstack.compute.schemas import (
    name, name_with_leading_trailing_spaces)

#: An availability zone name: printable, no ':' (``az:host`` is how a
#: server asks for a host), no leading/trailing whitespace.
zone_name = {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": r"^(?!\s)[^\x00-\x1f\x7f:]*(?<!\s)$"}

_zone = {"oneOf": [zone_name, {"type": "null"}]}

#: A compute host name.
host_name = {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": r"^[a-zA-Z0-9-._]*$"}

_metadata_with_null = {
    "type": "object",
    "patternProperties": {
        r"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "null"],
                                        "maxLength": 255},
    },
    "additionalProperties": False,
}

create = {
    "type": "object",
    "properties": {"aggregate": {
        "type": "object",
        "properties": {"name": name, "availability_zone": _zone},
        "required": ["name"],
        "additionalProperties": False,
    }},
    "required": ["aggregate"],
    "additionalProperties": False,
}

update = {
    "type": "object",
    "properties": {"aggregate": {
        "type": "object",
        "properties": {"name": name_with_leading_trailing_spaces,
                       "availability_zone": _zone},
        "additionalProperties": False,
        "anyOf": [{"required": ["name"]},
                  {"required": ["availability_zone"]}],
    }},
    "required": ["aggregate"],
    "additionalProperties": False,
}


def _host_action(action: str) -> dict:
    return {
        "type": "object",
        "properties": {action: {
            "type": "object",
            "properties": {"host": host_name},
            "required": ["host"],
            "additionalProperties": False,
        }},
        "required": [action],
        "additionalProperties": False,
    }


add_host = _host_action("add_host")
remove_host = _host_action("remove_host")

set_metadata = {
    "type": "object",
    "properties": {"set_metadata": {
        "type": "object",
        "properties": {"metadata": _metadata_with_null},
        "required": ["metadata"],
        "additionalProperties": False,
    }},
    "required": ["set_metadata"],
    "additionalProperties": False,
}


#: 2.81 ``POST /os-aggregates/{id}/images``
images = {
    "type": "object",
    "properties": {"cache": {
        "type": "array", "minItems": 1,
        "items": {"type": "object",
                  "properties": {"id": {"type": "string",
                                        "format": "uuid"}},
                  "required": ["id"], "additionalProperties": False},
    }},
    "required": ["cache"],
    "additionalProperties": False,
}
