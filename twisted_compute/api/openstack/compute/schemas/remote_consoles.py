"""Request bodies of the remote consoles (Nova's, per microversion)."""

from __future__ import annotations

import copy


def _legacy(action: str, types: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {action: {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": types}},
            "required": ["type"],
            "additionalProperties": False,
        }},
        "required": [action],
        "additionalProperties": False,
    }


get_vnc_console = _legacy("os-getVNCConsole", ["novnc", "xvpvnc"])
get_spice_console = _legacy("os-getSPICEConsole", ["spice-html5"])
get_serial_console = _legacy("os-getSerialConsole", ["serial"])
get_rdp_console = _legacy("os-getRDPConsole", ["rdp-html5"])

create_v26 = {
    "type": "object",
    "properties": {"remote_console": {
        "type": "object",
        "properties": {
            "protocol": {"type": "string",
                         "enum": ["vnc", "spice", "rdp", "serial"]},
            "type": {"type": "string",
                     "enum": ["novnc", "xvpvnc", "rdp-html5",
                              "spice-html5", "serial"]},
        },
        "required": ["protocol", "type"],
        "additionalProperties": False,
    }},
    "required": ["remote_console"],
    "additionalProperties": False,
}

create_v28 = copy.deepcopy(create_v26)
_console = create_v28["properties"]["remote_console"]["properties"]
_console["protocol"]["enum"].append("mks")
_console["type"]["enum"].append("webmks")

create_v299 = copy.deepcopy(create_v28)
create_v299["properties"]["remote_console"]["properties"]["type"][
    "enum"].append("spice-direct")
