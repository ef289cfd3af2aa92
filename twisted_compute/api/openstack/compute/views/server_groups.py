"""Server group bodies."""

from __future__ import annotations

from twisted_compute.api.openstack import common
from twisted_compute.objects.server_group import ServerGroup


def show(request, group: ServerGroup) -> dict:
    body = {"id": group.uuid, "name": group.name,
            "members": list(group.members)}
    if common.is_at_least(request, "2.64"):
        body["policy"] = group.policy
        body["rules"] = dict(group.rules)
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    if common.is_at_least(request, "2.13"):
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body
