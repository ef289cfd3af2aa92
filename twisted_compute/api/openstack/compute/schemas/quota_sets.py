"""Schemas of quota set updates, per microversion."""

from twisted_compute.api.openstack.compute.schemas import boolean
from twisted_compute.api.openstack.compute.views.quota_sets import (
    ENFORCED, INJECTED, NETWORK)

_limit = {"type": ["integer", "string"], "pattern": r"^-?[0-9]+$",
          "minimum": -1, "maximum": 2147483647}


def _update(names) -> dict:
    properties = {name: _limit for name in names}
    properties["force"] = boolean
    return {
        "type": "object",
        "properties": {"quota_set": {
            "type": "object", "properties": properties,
            "additionalProperties": False,
        }},
        "required": ["quota_set"],
        "additionalProperties": False,
    }


update = _update(list(ENFORCED) + list(NETWORK))
update_v236 = _update(list(ENFORCED))
update_v257 = _update([n for n in ENFORCED if n not in INJECTED])
