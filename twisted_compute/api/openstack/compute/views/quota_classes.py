"""Quota class set bodies: the resources Nova shows per microversion
(network quotas until 2.49, server group quotas from 2.50, personality
quotas until 2.56)."""

from __future__ import annotations

from twisted_compute.api.openstack.api_version import APIVersion
from twisted_compute.api.openstack.compute.views.quota_sets import (
    ENFORCED, INJECTED, NETWORK)

SERVER_GROUPS = ("server_groups", "server_group_members")


def update_names(version: str) -> list[str]:
    """The API resource names of a quota class set at ``version``."""
    at = APIVersion(version)
    names = [n for n in ENFORCED
             if at >= APIVersion("2.50") or n not in SERVER_GROUPS]
    if at >= APIVersion("2.57"):
        names = [n for n in names if n not in INJECTED]
    if at < APIVersion("2.50"):
        names += list(NETWORK)
    return names


def body(request, limits: dict[str, int],
         class_name: str | None = None) -> dict:
    """``quota_class_set`` (with ``id`` on show, not on update, as
    Nova); network quotas are unlimited (-1)."""
    out = {}
    for name in update_names(str(request.api_version)):
        out[name] = limits[ENFORCED[name]] if name in ENFORCED else -1
    if class_name is not None:
        out["id"] = class_name
    return out
