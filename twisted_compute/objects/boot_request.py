"""What the API decided for one boot request (``POST /servers``): the
instances it created (in BUILD / scheduling), what the scheduler needs to
place them, and the secrets the agent needs to build them (never stored).

It is the argument of the conductor's ``schedule_and_build_instances``
(RPC 1.2 and later).  Each instance travels without its stored copy of
the request spec: the spec travels once, beside the instances.
"""

from __future__ import annotations

from typing import Any

import attrs

from twisted_compute.objects.instance import Instance
from twisted_compute.objects.request_spec import RequestSpec

#: Instance fields that stay out of the bus form (carried once, by the
#: record itself).
_NOT_SENT = frozenset({"request_spec"})


@attrs.frozen(slots=True)
class BootRequest:
    instances: tuple[Instance, ...]
    request_spec: RequestSpec
    admin_password: str | None = None
    #: Personality files: ``[{"path": ..., "contents": base64}, ...]``.
    injected_files: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "instances": [i.to_dict(exclude=_NOT_SENT)
                          for i in self.instances],
            "request_spec": self.request_spec.to_dict(),
            "admin_password": self.admin_password,
            "injected_files": list(self.injected_files),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "BootRequest":
        return cls(
            instances=tuple(Instance.from_dict(i)
                            for i in values["instances"]),
            request_spec=RequestSpec.from_dict(values["request_spec"]),
            admin_password=values.get("admin_password"),
            injected_files=tuple(values.get("injected_files") or ()))

    @classmethod
    def from_legacy(cls, build_requests: list[dict[str, Any]],
                    request_spec: dict[str, Any] | None) -> "BootRequest":
        """Decode the arguments of ``schedule_and_build_instances`` 1.0
        (an older API): instance dicts, and a request spec dict with the
        secrets in it.  ``request_spec`` is not changed."""
        spec = request_spec or {}
        return cls(
            instances=tuple(Instance.from_dict(i) for i in build_requests),
            request_spec=RequestSpec.from_dict(spec),
            admin_password=spec.get("admin_password"),
            injected_files=tuple(spec.get("injected_files") or ()))
