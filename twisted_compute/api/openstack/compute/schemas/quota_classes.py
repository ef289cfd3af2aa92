"""Schemas of quota class updates, per microversion (as Nova's: no
server group quotas before 2.50, no network quotas from 2.50, no
personality quotas from 2.57; no ``force``)."""

from twisted_compute.api.openstack.compute.views.quota_classes import \
    update_names


def _update(names) -> dict:
    limit = {"type": ["integer", "string"], "pattern": r"^-?[0-9]+$",
             "minimum": -1, "maximum": 2147483647}
    return {
        "type": "object",
        "properties": {"quota_class_set": {
            "type": "object",
            "properties": {name: limit for name in names},
            "additionalProperties": False,
        }},
        "required": ["quota_class_set"],
        "additionalProperties": False,
    }


update = _update(update_names("2.1"))
update_v250 = _update(update_names("2.50"))
update_v257 = _update(update_names("2.57"))
