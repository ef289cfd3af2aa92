"""The request context: who is asking, for which project, under which id.

A context is created by the authentication middleware for every API
request and travels with the work it causes (over the bus too, as a dict),
so that the request id appears in the logs of every process that touched
it.
"""

from __future__ import annotations

from typing import Any

import attrs

from twisted_compute import ids


def generate_request_id() -> str:
    return "req-" + ids.uuid4_str()


@attrs.frozen
class RequestContext:
    user_id: str | None
    project_id: str | None
    roles: tuple[str, ...] = ()
    request_id: str = attrs.field(factory=generate_request_id)
    is_admin: bool = False
    auth_token: str | None = attrs.field(default=None, repr=False)
    remote_address: str | None = None
    global_request_id: str | None = None
    user_name: str | None = None
    project_name: str | None = None
    read_deleted: str = "no"

    def to_dict(self) -> dict[str, Any]:
        """The form that crosses the bus (no token)."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": list(self.roles),
            "request_id": self.request_id,
            "is_admin": self.is_admin,
            "remote_address": self.remote_address,
            "global_request_id": self.global_request_id,
            "user_name": self.user_name,
            "project_name": self.project_name,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RequestContext":
        return cls(
            user_id=values.get("user_id"),
            project_id=values.get("project_id"),
            roles=tuple(values.get("roles") or ()),
            request_id=values.get("request_id") or generate_request_id(),
            is_admin=bool(values.get("is_admin")),
            remote_address=values.get("remote_address"),
            global_request_id=values.get("global_request_id"),
            user_name=values.get("user_name"),
            project_name=values.get("project_name"),
        )

    def elevated(self) -> "RequestContext":
        """The same request, with admin rights (for internal lookups)."""
        roles = self.roles if "admin" in self.roles else self.roles + (
            "admin",)
        return attrs.evolve(self, is_admin=True, roles=roles)


def get_admin_context(request_id: str | None = None) -> RequestContext:
    return RequestContext(
        user_id=None, project_id=None, roles=("admin",), is_admin=True,
        request_id=request_id or generate_request_id())
