"""JSON Schema pieces for the OpenAPI documents: the converter from the
Draft 4 schemas the controllers validate with to the JSON Schema 2020-12
that OpenAPI 3.1 speaks, and small builders for response bodies."""

from __future__ import annotations

from typing import Any


def to_openapi(schema: Any) -> Any:
    """A Draft 4 ``schema`` (as :func:`~twisted_compute.api.openstack.
    common.validate` checks it) in JSON Schema 2020-12: the same
    instances are valid under both.

    * ``exclusiveMinimum: true`` with ``minimum: X`` becomes
      ``exclusiveMinimum: X`` (likewise for the maximum);
    * ``items: [a, b]`` (a tuple) becomes ``prefixItems``, and
      ``additionalItems`` becomes ``items``.

    The input is never changed; a new structure is returned.
    """
    if isinstance(schema, list):
        return [to_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions",
                   "$defs"):
            result[key] = {name: to_openapi(sub)
                           for name, sub in value.items()}
        elif key in ("items",) and isinstance(value, list):
            result["prefixItems"] = [to_openapi(sub) for sub in value]
        elif key == "additionalItems":
            continue  # handled with items below
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and \
                isinstance(value, bool):
            continue  # handled with minimum/maximum below
        else:
            result[key] = to_openapi(value)
    if isinstance(schema.get("items"), list) and "additionalItems" in schema:
        result["items"] = to_openapi(schema["additionalItems"])
    for bound, exclusive in (("minimum", "exclusiveMinimum"),
                             ("maximum", "exclusiveMaximum")):
        if schema.get(exclusive) is True and bound in schema:
            result[exclusive] = result.pop(bound)
    return result


# --- builders for response schemas -----------------------------------------

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
NULL_STRING = {"type": ["string", "null"]}
NULL_INTEGER = {"type": ["integer", "null"]}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
STRINGS = {"type": "array", "items": STRING}
ANY_OBJECT = {"type": "object"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Any], optional: tuple[str, ...] = (),
        additional: bool | dict = False) -> dict:
    """An object with exactly ``properties``: all required except
    ``optional``; no other key unless ``additional``."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": [name for name in properties if name not in optional],
        "additionalProperties": additional,
    }


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


LINK = obj({"rel": STRING, "href": STRING, "type": STRING},
           optional=("type",))
LINKS = array(LINK)
