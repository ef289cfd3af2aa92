"""What an operation of a documented API is: its route, the request body
schema the controller validates with (per microversion), its query
parameters, and its answers."""

from __future__ import annotations

from typing import Any, Callable

import attrs

from twisted_compute.api.openstack.api_version import APIVersion

#: A schema, or a function of the microversion that gives one (None: no
#: body).
SchemaSpec = Any

#: What a response spec answers at a microversion where that status is
#: not answered at all.
OMIT = "<not at this microversion>"


def at(spec: SchemaSpec, version: APIVersion):
    """``spec`` at ``version`` (a callable is called with it)."""
    return spec(version) if callable(spec) else spec


def versioned(*choices: tuple[str | None, str | None, Any]
              ) -> Callable[[APIVersion], Any]:
    """A schema chosen by microversion, as a controller chooses it with
    :func:`~twisted_compute.api.openstack.common.versioned`:
    ``versioned(("2.55", None, create_v255), (None, "2.54", create))``."""
    def choose(version: APIVersion):
        for low, high, schema in choices:
            if version.matches(low, high):
                return schema
        return None
    return choose


@attrs.frozen
class Param:
    """A query (or path) parameter."""

    name: str
    schema: dict = attrs.field(factory=lambda: {"type": "string"})
    description: str = ""
    min_version: str | None = None
    max_version: str | None = None
    location: str = "query"
    required: bool = False


@attrs.frozen
class Operation:
    """One route of a controller: ``method`` and the Klein ``path``
    (``/servers/<server_id>``), served from ``min_version`` to
    ``max_version``.

    ``request``: the request body schema (a :data:`SchemaSpec`);
    ``responses``: ``{status: SchemaSpec}`` of the successful answers
    (None: no body; a callable may also answer None to leave the status
    out at that version); ``errors``: the fault statuses beyond those of
    every operation; ``links``: ``{status: {name: link object}}``.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    responses: dict[int, SchemaSpec]
    request: SchemaSpec = None
    media_type: str = "application/json"
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    min_version: str | None = None
    max_version: str | None = None
    links: dict[int, dict[str, dict]] = attrs.field(factory=dict)
    tag: str = ""

    def served_at(self, version: APIVersion) -> bool:
        return version.matches(self.min_version, self.max_version)

    @property
    def openapi_path(self) -> str:
        """``/servers/{server_id}``."""
        return self.path.replace("<", "{").replace(">", "}")

    def path_params(self) -> list[str]:
        names = []
        for segment in self.path.split("/"):
            if segment.startswith("<") and segment.endswith(">"):
                names.append(segment[1:-1].split(":")[-1])
        return names
