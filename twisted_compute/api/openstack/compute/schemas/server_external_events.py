"""The body of ``POST /os-server-external-events``, per microversion."""

import functools

#: Event names and the microversion each is accepted from.
EVENT_NAMES = (
    ("network-changed", None), ("network-vif-plugged", None),
    ("network-vif-unplugged", None), ("network-vif-deleted", None),
    ("volume-extended", "2.51"), ("power-update", "2.76"),
    ("accelerator-request-bound", "2.82"), ("volume-reimaged", "2.93"),
)

STATUSES = ("failed", "completed", "in-progress")


def names_at(is_at_least) -> tuple[str, ...]:
    """The event names accepted at a microversion (``is_at_least(v)``
    tells whether the request's version is at least ``v``)."""
    return tuple(name for name, since in EVENT_NAMES
                 if since is None or is_at_least(since))


@functools.lru_cache(maxsize=None)
def create(names: tuple[str, ...]) -> dict:
    """The body schema for these event names (one object per set of
    names, so the OpenAPI document and the controller share it)."""
    return {
        "type": "object",
        "properties": {"events": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "server_uuid": {"type": "string", "format": "uuid"},
                    "name": {"type": "string", "enum": list(names)},
                    "status": {"type": "string", "enum": list(STATUSES)},
                    "tag": {"type": "string", "maxLength": 255},
                },
                "required": ["server_uuid", "name"],
                "additionalProperties": False,
            },
        }},
        "required": ["events"],
        "additionalProperties": False,
    }
