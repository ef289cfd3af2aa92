"""A guest's NUMA topology, read from its domain XML, in the shape of
``GET /servers/{id}/topology`` (2.78):

* a node per ``<cpu><numa><cell>``: ``vcpu_set`` (its ``cpus``),
  ``memory_mb``, ``siblings`` (its vCPUs grouped by ``<topology
  threads>``), ``host_node`` (``<numatune><memnode cellid nodeset>`` when
  it names one host node) and ``cpu_pinning`` (``<cputune><vcpupin>`` of
  its vCPUs pinned to one host CPU each);
* ``pagesize_kb``: the ``<memoryBacking><hugepages><page>`` size, else
  None.

A guest without ``<numa>`` cells has no NUMA topology (None), as Nova
answers for a server without one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1,
        "m": 1024, "mib": 1024, "mb": 1024, "g": 1024 ** 2,
        "gib": 1024 ** 2, "gb": 1024 ** 2}


def parse_cpuset(text: str) -> list[int]:
    """libvirt's cpuset syntax (``0-3,^2,5``) as a sorted list."""
    wanted: set[int] = set()
    excluded: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        target = wanted
        if part.startswith("^"):
            target, part = excluded, part[1:]
        low, _, high = part.partition("-")
        target.update(range(int(low), int(high or low) + 1))
    return sorted(wanted - excluded)


def _kib(value: str | None, unit: str | None) -> float:
    return float(value or 0) * _KIB.get((unit or "KiB").lower(), 1)


def numa_topology_from_xml(text: str) -> dict[str, Any] | None:
    root = ET.fromstring(text)
    cells = root.findall("cpu/numa/cell")
    if not cells:
        return None
    threads = 1
    topology = root.find("cpu/topology")
    if topology is not None:
        threads = max(1, int(topology.get("threads") or 1))
    pins = {}
    for pin in root.findall("cputune/vcpupin"):
        cpus = parse_cpuset(pin.get("cpuset", ""))
        if len(cpus) == 1:
            pins[int(pin.get("vcpu"))] = cpus[0]
    host_nodes = {}
    for memnode in root.findall("numatune/memnode"):
        nodes = parse_cpuset(memnode.get("nodeset", ""))
        if len(nodes) == 1:
            host_nodes[int(memnode.get("cellid"))] = nodes[0]
    nodes = []
    for index, cell in enumerate(cells):
        cell_id = int(cell.get("id", index))
        vcpus = parse_cpuset(cell.get("cpus", ""))
        nodes.append({
            "vcpu_set": vcpus,
            "memory_mb": int(_kib(cell.get("memory"), cell.get("unit"))
                             // 1024),
            "siblings": [vcpus[i:i + threads]
                         for i in range(0, len(vcpus), threads)]
            if threads > 1 else [],
            "host_node": host_nodes.get(cell_id),
            "cpu_pinning": {str(v): pins[v] for v in vcpus if v in pins},
        })
    page = root.find("memoryBacking/hugepages/page")
    pagesize_kb = None
    if page is not None and page.get("size"):
        pagesize_kb = int(_kib(page.get("size"), page.get("unit")))
    return {"nodes": nodes, "pagesize_kb": pagesize_kb}
