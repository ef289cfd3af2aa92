"""``os-simple-tenant-usage``: the hours, vCPU-, RAM- and disk-hours of
each project's servers over ``start``..``end`` (``openstack usage list``
and ``usage show``); ``detailed=1`` lists each server; ``limit`` and
``marker`` paginate the servers from 2.40."""

from __future__ import annotations

import datetime
from typing import Any

from twisted_compute import exception
from twisted_compute.api.openstack import common
from twisted_compute.api.openstack.common import (
    Controller, json_response, make_app, route)

LIST = "os_compute_api:os-simple-tenant-usage:list"
SHOW = "os_compute_api:os-simple-tenant-usage:show"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _iso(when: datetime.datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _when(request, name: str, default: datetime.datetime):
    text = common.query_one(request, name)
    if not text:
        return default
    return common.parse_isotime(text, name)


def server_usage(instance, start, stop, now) -> dict[str, Any] | None:
    """One server's usage in [start, stop]; None when it did not run
    then."""
    began = instance.launched_at
    ended = instance.terminated_at or instance.deleted_at
    if began is None or began > stop or (ended is not None and
                                         ended < start):
        return None
    low, high = max(began, start), min(ended or stop, stop)
    hours = max((high - low).total_seconds(), 0) / 3600.0
    up = ((ended or now) - began)
    flavor = instance.flavor or {}
    return {
        "ended_at": _iso(ended), "flavor": flavor.get("name"),
        "hours": hours, "instance_id": instance.uuid,
        "local_gb": instance.root_gb + instance.ephemeral_gb,
        "memory_mb": instance.memory_mb, "name": instance.display_name,
        "started_at": _iso(began),
        "state": "terminated" if ended is not None else instance.vm_state,
        "tenant_id": instance.project_id,
        "uptime": int(up.total_seconds()), "vcpus": instance.vcpus,
    }


def tenant_usage(project_id, usages, start, stop, detailed: bool):
    body = {
        "start": _iso(start), "stop": _iso(stop), "tenant_id": project_id,
        "total_hours": sum(u["hours"] for u in usages),
        "total_local_gb_usage": sum(u["local_gb"] * u["hours"]
                                    for u in usages),
        "total_memory_mb_usage": sum(u["memory_mb"] * u["hours"]
                                     for u in usages),
        "total_vcpus_usage": sum(u["vcpus"] * u["hours"] for u in usages),
    }
    if detailed:
        body["server_usages"] = usages
    return body


class SimpleTenantUsageController(Controller):
    app = make_app()
    collections = (("os-simple-tenant-usage",),)
    clock = staticmethod(_utcnow)

    async def _usages(self, request, context, project_id):
        now = self.clock()
        start = _when(request, "start", now)
        stop = _when(request, "end", now)
        if start > stop:
            raise exception.InvalidInput(
                reason="Invalid start time. The start time cannot occur "
                "after the end time.")
        filters: dict[str, Any] = {}
        if project_id is not None:
            filters["project_id"] = project_id
        instances = await self.services.compute_api.get_all(
            context, filters, sort_keys=("created_at", "id"),
            sort_dirs=("asc", "asc"))
        usages = [u for u in (server_usage(i, start, stop, now)
                              for i in instances) if u is not None]
        limit = None
        if common.is_at_least(request, "2.40"):
            limit, marker = common.limit_and_marker(
                request, self.conf.api.max_limit)
            if marker:
                ids = [u["instance_id"] for u in usages]
                if marker not in ids:
                    raise exception.InvalidMarker(marker=marker)
                usages = usages[ids.index(marker) + 1:]
            usages = usages[:limit]
        return usages, start, stop, limit

    @staticmethod
    def _detailed(request) -> bool:
        return common.query_one(request, "detailed", "0") in (
            "1", "true", "True")

    @route(app, "/os-simple-tenant-usage", ["GET"])
    async def index(self, request):
        context = common.get_context(request)
        self.services.policy.authorize(context, LIST)
        usages, start, stop, limit = await self._usages(request, context,
                                                        None)
        detailed = self._detailed(request)
        by_project: dict[str, list] = {}
        for usage in usages:
            by_project.setdefault(usage["tenant_id"], []).append(usage)
        body: dict[str, Any] = {"tenant_usages": [
            tenant_usage(p, u, start, stop, detailed)
            for p, u in by_project.items()]}
        if limit is not None:
            links = common.next_link(
                request, "os-simple-tenant-usage", usages, limit,
                marker_of=lambda u: u["instance_id"])
            if links:
                body["tenant_usages_links"] = links
        return json_response(request, body)

    @route(app, "/os-simple-tenant-usage/<tenant_id>", ["GET"])
    async def show(self, request, tenant_id):
        context = common.get_context(request)
        self.services.policy.authorize(context, SHOW,
                                       {"project_id": tenant_id})
        usages, start, stop, limit = await self._usages(request, context,
                                                        tenant_id)
        body: dict[str, Any] = {"tenant_usage": tenant_usage(
            tenant_id, usages, start, stop, True) if usages else {}}
        if limit is not None:
            links = common.next_link(
                request, f"os-simple-tenant-usage/{tenant_id}", usages,
                limit, marker_of=lambda u: u["instance_id"])
            if links:
                body["tenant_usage_links"] = links
        return json_response(request, body)
