"""Schemas of flavor extra spec bodies."""

#: What an extra spec key may look like.
KEY_PATTERN = r"^[a-zA-Z0-9-_:. ]{1,255}$"

_value = {"type": ["string", "number", "boolean"], "maxLength": 255}

specs = {
    "type": "object",
    "patternProperties": {KEY_PATTERN: _value},
    "additionalProperties": False,
}

create = {
    "type": "object",
    "properties": {"extra_specs": specs},
    "required": ["extra_specs"],
    "additionalProperties": False,
}

update = {**specs, "minProperties": 1, "maxProperties": 1}
