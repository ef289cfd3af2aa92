"""The ``/limits`` body."""

from __future__ import annotations

from twisted_compute.api.openstack import common

#: API name -> quota resource, for every microversion.
_LIMITS = {
    "maxTotalInstances": "instances", "maxTotalCores": "cores",
    "maxTotalRAMSize": "ram", "maxServerMeta": "metadata_items",
    "maxTotalKeypairs": "key_pairs", "maxServerGroups": "server_groups",
    "maxServerGroupMembers": "server_group_members",
}
_USED = {
    "totalInstancesUsed": "instances", "totalCoresUsed": "cores",
    "totalRAMUsed": "ram", "totalServerGroupsUsed": "server_groups",
}


def absolute(request, limits: dict[str, int],
             usage: dict[str, int]) -> dict[str, int]:
    body = {name: limits[resource] for name, resource in _LIMITS.items()}
    body.update({name: usage.get(resource, 0)
                 for name, resource in _USED.items()})
    if not common.is_at_least(request, "2.39"):
        body["maxImageMeta"] = limits["metadata_items"]
    if not common.is_at_least(request, "2.57"):
        body["maxPersonality"] = limits["injected_files"]
        body["maxPersonalitySize"] = limits["injected_file_content_bytes"]
    if not common.is_at_least(request, "2.36"):
        # Networking is Neutron's: nothing we limit or count.
        body.update({"maxSecurityGroups": -1, "maxSecurityGroupRules": -1,
                     "maxTotalFloatingIps": -1,
                     "totalSecurityGroupsUsed": 0,
                     "totalFloatingIpsUsed": 0})
    return body
