"""Hypervisor (compute node) bodies."""

from __future__ import annotations

import datetime
import functools
import json

from twisted_compute.api.openstack import common
from twisted_compute.db import services as services_db
from twisted_compute.objects.service import ComputeNode


def _uuids(request) -> bool:
    return common.is_at_least(request, "2.53")


def basic(request, node: ComputeNode, now: datetime.datetime,
          down_time) -> dict:
    service = node.service
    return {
        "id": node.uuid if _uuids(request) else node.id,
        "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if services_db.is_up(service, now, down_time)
        else "down",
        "status": "disabled" if service.disabled else "enabled",
    }


@functools.lru_cache(maxsize=4096)
def _decoded_cpu_info(text: str) -> dict:
    """``cpu_info`` decoded: nodes of one model report the same text, so
    1,000 of them decode it once.  The dict is shared between bodies:
    nothing changes it (bodies are encoded as they are)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _cpu_info(request, text: str):
    if not common.is_at_least(request, "2.28"):
        return text
    return _decoded_cpu_info(text or "{}")


def uptime(node: ComputeNode, now: datetime.datetime,
           down_time) -> str | None:
    """The uptime the node's agent last reported; None while its service
    is down (it may be stale) or when its driver reports none."""
    if not services_db.is_up(node.service, now, down_time):
        return None
    return node.uptime


def detail(request, node: ComputeNode, now: datetime.datetime,
           down_time) -> dict:
    body = basic(request, node, now, down_time)
    service = node.service
    service_body = {
        "host": service.host,
        "id": service.uuid if _uuids(request) else service.id,
        "disabled_reason": service.disabled_reason,
    }
    if common.is_at_least(request, "2.88"):
        # The capacity fields are gone (placement has them); the uptime
        # moves here from /uptime.
        body.update({
            "host_ip": node.host_ip,
            "hypervisor_type": node.hypervisor_type,
            "hypervisor_version": node.hypervisor_version,
            "service": service_body,
            "uptime": uptime(node, now, down_time),
        })
        return body
    free_disk = node.local_gb - node.local_gb_used
    body.update({
        "cpu_info": _cpu_info(request, node.cpu_info),
        "current_workload": node.current_workload,
        "disk_available_least": free_disk,
        "host_ip": node.host_ip,
        "free_disk_gb": free_disk,
        "free_ram_mb": node.memory_mb - node.memory_mb_used,
        "hypervisor_type": node.hypervisor_type,
        "hypervisor_version": node.hypervisor_version,
        "local_gb": node.local_gb,
        "local_gb_used": node.local_gb_used,
        "memory_mb": node.memory_mb,
        "memory_mb_used": node.memory_mb_used,
        "running_vms": node.running_vms,
        "service": service_body,
        "vcpus": node.vcpus,
        "vcpus_used": node.vcpus_used,
    })
    return body


def add_servers(request, body: dict, servers: list[dict]) -> dict:
    """Before 2.75 ``servers`` is left out when there are none."""
    if servers or common.is_at_least(request, "2.75"):
        body["servers"] = servers
    return body


STATISTICS = ("vcpus", "memory_mb", "local_gb", "vcpus_used",
              "memory_mb_used", "local_gb_used", "running_vms",
              "current_workload")


def statistics(nodes: list[ComputeNode]) -> dict:
    body = {name: sum(getattr(n, name) for n in nodes)
            for name in STATISTICS}
    free_disk = sum(n.local_gb - n.local_gb_used for n in nodes)
    body.update({
        "count": len(nodes),
        "free_ram_mb": sum(n.memory_mb - n.memory_mb_used for n in nodes),
        "free_disk_gb": free_disk,
        "disk_available_least": free_disk,
    })
    return body
