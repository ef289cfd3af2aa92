"""Quota set bodies: which resources the API shows at a microversion and
how they map onto :mod:`twisted_compute.db.quotas` resources."""

from __future__ import annotations

from twisted_compute.api.openstack import common

#: API name -> our resource name, for resources we enforce.
ENFORCED = {
    "instances": "instances", "cores": "cores", "ram": "ram",
    "metadata_items": "metadata_items", "key_pairs": "key_pairs",
    "server_groups": "server_groups",
    "server_group_members": "server_group_members",
    "injected_files": "injected_files",
    "injected_file_content_bytes": "injected_file_content_bytes",
    "injected_file_path_bytes": "injected_file_path_length",
}

#: Shown before 2.36 (networking belongs to Neutron): always unlimited.
NETWORK = ("fixed_ips", "floating_ips", "security_group_rules",
           "security_groups")

#: Removed from the API in 2.57 (personality files went away).
INJECTED = ("injected_files", "injected_file_content_bytes",
            "injected_file_path_bytes")


def names(request) -> list[str]:
    """The API resource names shown at the request's microversion."""
    shown = list(ENFORCED)
    if common.is_at_least(request, "2.57"):
        shown = [n for n in shown if n not in INJECTED]
    if not common.is_at_least(request, "2.36"):
        shown += list(NETWORK)
    return shown


def limits_body(request, limits: dict[str, int],
                project_id: str | None = None) -> dict:
    body = {}
    for name in names(request):
        body[name] = limits[ENFORCED[name]] if name in ENFORCED else -1
    if project_id is not None:
        body["id"] = project_id
    return body


def detail_body(request, limits: dict[str, int], usage: dict[str, int],
                project_id: str) -> dict:
    body = {}
    for name in names(request):
        ours = ENFORCED.get(name)
        body[name] = {
            "limit": limits[ours] if ours else -1,
            "in_use": usage.get(ours, 0) if ours else 0,
            "reserved": 0,
        }
    body["id"] = project_id
    return body
