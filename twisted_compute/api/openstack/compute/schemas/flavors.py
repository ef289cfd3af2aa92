"""Schemas of flavor bodies."""

from twisted_compute.api.openstack.compute.schemas import (
    boolean, description, name, non_negative_integer, positive_integer)

create = {
    "type": "object",
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {
                "name": name,
                # A number is accepted too (and stored as its text), as
                # Nova accepts it; null or absent: a uuid is generated.
                "id": {"type": ["string", "number", "null"], "minLength": 1,
                       "maxLength": 255,
                       "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
                "ram": positive_integer,
                "vcpus": positive_integer,
                "disk": non_negative_integer,
                "OS-FLV-EXT-DATA:ephemeral": non_negative_integer,
                "swap": non_negative_integer,
                "rxtx_factor": {"type": ["number", "string"],
                                "pattern": r"^[0-9]+(\.[0-9]+)?$",
                                "minimum": 0, "exclusiveMinimum": True,
                                "maximum": 3.40282e+38},
                "os-flavor-access:is_public": boolean,
            },
            "required": ["name", "ram", "vcpus", "disk"],
            "additionalProperties": False,
        },
    },
    "required": ["flavor"],
    "additionalProperties": False,
}

create_v255 = {
    **create,
    "properties": {"flavor": {
        **create["properties"]["flavor"],
        "properties": {**create["properties"]["flavor"]["properties"],
                       "description": description},
    }},
}

#: 2.102: ``rxtx_factor`` is gone.
create_v2102 = {
    **create_v255,
    "properties": {"flavor": {
        **create_v255["properties"]["flavor"],
        "properties": {
            k: v for k, v in
            create_v255["properties"]["flavor"]["properties"].items()
            if k != "rxtx_factor"},
    }},
}

update_v255 = {
    "type": "object",
    "properties": {"flavor": {
        "type": "object",
        "properties": {"description": description},
        "required": ["description"],
        "additionalProperties": False,
    }},
    "required": ["flavor"],
    "additionalProperties": False,
}
