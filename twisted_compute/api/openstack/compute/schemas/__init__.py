"""JSON schemas of request bodies, per microversion."""

from __future__ import annotations

#: A name: printable, no leading/trailing whitespace, 1-255 characters.
name = {"type": "string", "minLength": 1, "maxLength": 255,
        "pattern": r"^(?! )[^\x00-\x1f\x7f]*(?<! )$"}

name_with_leading_trailing_spaces = {
    "type": "string", "minLength": 1, "maxLength": 255,
    "pattern": r"^[^\x00-\x1f\x7f]*$"}

description = {"type": ["string", "null"], "minLength": 0,
               "maxLength": 255, "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"}

boolean = {"type": ["boolean", "string"],
           "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on",
                    "YES", "Yes", "yes", False, "False", "FALSE", "false",
                    "0", "OFF", "Off", "off", "NO", "No", "no"]}

# (minLength: a digit string may not be empty.  No schema bounds the value
# of a digit string: the controllers check it with common.bounded_int.)
non_negative_integer = {"type": ["integer", "string"],
                        "pattern": "^[0-9]*$", "minLength": 1, "minimum": 0,
                        "maximum": 2147483647}

positive_integer = {"type": ["integer", "string"],
                    "pattern": "^[0-9]*$", "minLength": 1, "minimum": 1,
                    "maximum": 2147483647}


def to_bool(value) -> bool:
    """A validated :data:`boolean` as a bool."""
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "on", "yes")
