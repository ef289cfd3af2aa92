"""Schemas of server group bodies, per microversion."""

from twisted_compute.api.openstack.compute.schemas import (
    name, positive_integer)

_HARD = ["anti-affinity", "affinity"]
_ALL = _HARD + ["soft-anti-affinity", "soft-affinity"]


def _create(group_properties: dict, required: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {"server_group": {
            "type": "object",
            "properties": {"name": name, **group_properties},
            "required": ["name"] + required,
            "additionalProperties": False,
        }},
        "required": ["server_group"],
        "additionalProperties": False,
    }


def _policies(allowed: list[str]) -> dict:
    return {"type": "array",
            "items": [{"type": "string", "enum": allowed}],
            "uniqueItems": True, "minItems": 1, "maxItems": 1,
            "additionalItems": False}


create = _create({"policies": _policies(_HARD)}, ["policies"])
create_v215 = _create({"policies": _policies(_ALL)}, ["policies"])
create_v264 = _create({
    "policy": {"type": "string", "enum": _ALL},
    "rules": {"type": "object",
              "properties": {"max_server_per_host": positive_integer},
              "additionalProperties": False},
}, ["policy"])
