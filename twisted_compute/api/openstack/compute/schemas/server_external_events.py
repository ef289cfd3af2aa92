"""The body of ``POST /os-server-external-events``, per microversion."""

#: Event names and the microversion each is accepted from.
EVENT_NAMES = (
    ("network-changed", None), ("network-vif-plugged", None),
    ("network-vif-unplugged", None), ("network-vif-deleted", None),
    ("volume-extended", "2.51"), ("power-update", "2.76"),
    ("accelerator-request-bound", "2.82"), ("volume-reimaged", "2.93"),
)

STATUSES = ("failed", "completed", "in-progress")


def create(names) -> dict:
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
