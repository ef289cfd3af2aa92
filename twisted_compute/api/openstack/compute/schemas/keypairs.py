"""Schemas of key pair bodies."""

from twisted_compute.api.openstack.compute.schemas import name

create = {
    "type": "object",
    "properties": {"keypair": {
        "type": "object",
        "properties": {"name": name, "public_key": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }},
    "required": ["keypair"],
    "additionalProperties": False,
}


def _with(base: dict, **extra) -> dict:
    keypair = base["properties"]["keypair"]
    return {**base, "properties": {"keypair": {
        **keypair, "properties": {**keypair["properties"], **extra}}}}


create_v22 = _with(create, type={"type": "string",
                                 "enum": ["ssh", "x509"]})
create_v210 = _with(create_v22, user_id={"type": "string"})

#: 2.92: generation is gone (``public_key`` required).
create_v292 = {**create_v210, "properties": {"keypair": {
    **create_v210["properties"]["keypair"],
    "required": ["name", "public_key"]}}}
