"""Query-string schemas of the GET routes (Nova's query schemas).

A query string is checked as ``{name: [values]}`` (every parameter may be
repeated).  From microversion 2.102 every GET refuses a parameter its
schema does not name (400); before 2.102 queries are checked by the
controllers as they always were (servers refuse unknown parameters from
2.75).  A GET route that declares no schema takes no parameters at 2.102.
The schemas are data, so that the OpenAPI document can show them.
"""

from __future__ import annotations

from typing import Any

#: The microversion from which every GET refuses unknown parameters.
STRICT_FROM = "2.102"


def multi(item: dict | None = None) -> dict:
    """A parameter given once or more, each value matching ``item``."""
    return {"type": "array", "items": item or {"type": "string"},
            "minItems": 1}


string = multi()
non_negative_int = multi({"type": "string", "pattern": r"^[0-9]+$"})
#: Nova's boolean query values (``strutils.bool_from_string`` and the
#: empty string some clients send).
boolean = multi({"type": "string", "pattern":
                 r"^(?i:(true|false|t|f|yes|no|y|n|on|off|1|0)?)$"})
sort_dir = multi({"type": "string", "enum": ["asc", "desc"]})


def params(**properties: Any) -> dict:
    """The schema of a query taking ``properties`` (and nothing else at
    2.102)."""
    return {"type": "object", "properties": properties,
            "additionalProperties": False}


#: A GET taking no query parameters.
NONE = params()

paging = {"limit": non_negative_int, "marker": string}

flavors = params(
    is_public=string, minRam=non_negative_int, minDisk=non_negative_int,
    sort_key=string, sort_dir=sort_dir, name=string, **paging)

keypairs = params(user_id=string, **paging)
keypair = params(user_id=string)

hypervisors = params(hypervisor_hostname_pattern=string,
                     with_servers=boolean, **paging)
hypervisor = params(with_servers=boolean)

instance_actions = params(**{"changes-since": string,
                             "changes-before": string}, **paging)

server_groups = params(all_projects=boolean, limit=non_negative_int,
                       offset=non_negative_int)

services = params(host=string, binary=string)

#: (``reserved`` went at 2.57; 2.75 kept only ``tenant_id``.)
limits = params(tenant_id=string)

quota_set = params(user_id=string)

#: Removed before 2.102 (the images proxy until 2.35, os-hosts until
#: 2.42): their routes answer 404 first, as Nova's do.
REMOVED = None


def servers(known: set[str]) -> dict:
    """``GET /servers`` and ``/servers/detail``: the filters and sort
    keys of :mod:`..server_filters` (``known``)."""
    return params(**{name: string for name in sorted(known)})
