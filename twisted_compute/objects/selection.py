"""Where the scheduler put one instance: a host, its node, and the
alternates to reschedule to.

The bus form of one selection is the host dict the scheduler answers
with (``host``, ``nodename``, ``compute_node_uuid``, ``limits``); the
scheduler's answer for an instance is a list of them, the chosen host
first (:meth:`Selection.from_hosts`).
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs


@attrs.frozen(slots=True)
class Selection:
    host: str
    node: str | None = None
    compute_node_uuid: str | None = None
    #: The node's totals times its allocation ratios, for the resource
    #: filters that are enabled (``memory_mb``, ``disk_gb``, ``vcpu``).
    limits: dict[str, float] = attrs.field(factory=dict)
    #: The hosts to try next, best first (none of them has alternates).
    alternates: tuple["Selection", ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The host dict of this selection; its alternates, when it has
        some, under ``alternates``."""
        value: dict[str, Any] = {
            "host": self.host, "nodename": self.node,
            "compute_node_uuid": self.compute_node_uuid,
            "limits": self.limits}
        if self.alternates:
            value["alternates"] = [a.to_dict() for a in self.alternates]
        return value

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Selection":
        node = values.get("nodename")
        return cls(
            host=values["host"],
            node=values.get("node") if node is None else node,
            compute_node_uuid=values.get("compute_node_uuid"),
            limits=values.get("limits") or {},
            alternates=tuple(cls.from_dict(a) for a in
                             values.get("alternates") or ()))

    @classmethod
    def from_hosts(cls, hosts: Sequence[dict[str, Any]]) -> "Selection":
        """The scheduler's answer for one instance (host dicts, the chosen
        one first) as one selection with its alternates."""
        first = hosts[0]
        return cls(
            host=first["host"], node=first.get("nodename"),
            compute_node_uuid=first.get("compute_node_uuid"),
            limits=first.get("limits") or {},
            alternates=tuple(cls.from_dict(h) for h in hosts[1:]))
