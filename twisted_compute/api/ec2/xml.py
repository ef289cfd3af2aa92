"""EC2 Query API answers as XML: ``<ActionResponse xmlns=...>`` with a
``requestId`` and the action's members.  Lists are ``<item>`` elements,
booleans ``true``/``false``, times ISO 8601 in UTC with milliseconds,
as botocore's EC2 parser reads them."""

from __future__ import annotations

import datetime
from typing import Any
from xml.sax.saxutils import escape

API_VERSION = "2016-11-15"
NAMESPACE = f"http://ec2.amazonaws.com/doc/{API_VERSION}/"


def timestamp(when: datetime.datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{when.microsecond // 1000:03d}Z"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return timestamp(value) or ""
    return escape(str(value))


def _element(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, item in value.items():
            _element(key, item, out)
        out.append(f"</{name}>")
    elif isinstance(value, (list, tuple)):
        out.append(f"<{name}>")
        for item in value:
            _element("item", item, out)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_value(value)}</{name}>")


def response(action: str, request_id: str, body: dict[str, Any]) -> bytes:
    out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
           f"<{action}Response xmlns=\"{NAMESPACE}\">",
           f"<requestId>{escape(request_id)}</requestId>"]
    for key, value in body.items():
        _element(key, value, out)
    out.append(f"</{action}Response>")
    return "".join(out).encode("utf-8")
