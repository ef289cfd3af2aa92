"""JSON schemas of the image API: served at ``/v2/schemas/...`` and used
to check what clients send."""

from __future__ import annotations

import copy
import re

from twisted_compute import exception
from twisted_compute.api.image.store import CONTAINER_FORMATS, DISK_FORMATS

#: Attributes a client may never set.
READ_ONLY = ("status", "checksum", "os_hash_algo", "os_hash_value", "size",
             "virtual_size", "created_at", "updated_at", "self", "file",
             "schema", "direct_url", "locations", "location")

#: Base attributes a client may set (others are extra properties).
SETTABLE = ("id", "name", "visibility", "protected", "os_hidden", "owner",
            "disk_format", "container_format", "min_disk", "min_ram",
            "tags")

VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = ("queued", "saving", "active", "killed", "deleted",
            "pending_delete", "deactivated", "uploading", "importing")

_nullable_string = {"type": ["null", "string"], "maxLength": 255}

#: What an extra property's name may be (as Glance's 255-character
#: column), no control character in it.
PROPERTY_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")

IMAGE = {
    "name": "image",
    "additionalProperties": {"type": "string", "maxLength": 65535},
    "properties": {
        "id": {"type": "string",
               "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-"
                          "([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-"
                          "([0-9a-fA-F]){12}$",
               "description": "An identifier for the image"},
        "name": {**_nullable_string,
                 "description": "Descriptive name for the image"},
        "status": {"type": "string", "enum": list(STATUSES),
                   "readOnly": True},
        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "owner": {**_nullable_string},
        "checksum": {"type": ["null", "string"], "maxLength": 32,
                     "readOnly": True},
        "os_hash_algo": {"type": ["null", "string"], "maxLength": 64,
                         "readOnly": True},
        "os_hash_value": {"type": ["null", "string"], "maxLength": 128,
                          "readOnly": True},
        "min_ram": {"type": "integer", "minimum": 0,
                    "maximum": 2 ** 31 - 1},
        "min_disk": {"type": "integer", "minimum": 0,
                     "maximum": 2 ** 31 - 1},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "container_format": {"type": ["null", "string"],
                             "enum": [None, *CONTAINER_FORMATS]},
        "disk_format": {"type": ["null", "string"],
                        "enum": [None, *DISK_FORMATS]},
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": "string", "readOnly": True},
        "tags": {"type": "array",
                 "items": {"type": "string", "maxLength": 255},
                 "maxItems": 128},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
    },
    "links": [
        {"rel": "self", "href": "{self}"},
        {"rel": "enclosure", "href": "{file}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}


def check_property_name(name: str) -> None:
    """400 for an extra property's ``name`` no image may have."""
    if not PROPERTY_NAME.match(name):
        raise exception.ValidationError(
            field=name[:64] or "''", detail="A property name is 1 to 255 "
            "characters, none of them a control character.")


def image_schema() -> dict:
    return copy.deepcopy(IMAGE)


def images_schema() -> dict:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def settable_schema() -> dict:
    """The schema an image must satisfy after a create or a patch: only
    the base attributes a client sets, extra properties as strings."""
    schema = image_schema()
    return {
        "type": "object",
        "properties": {k: v for k, v in schema["properties"].items()
                       if k in SETTABLE},
        "additionalProperties": schema["additionalProperties"],
    }
