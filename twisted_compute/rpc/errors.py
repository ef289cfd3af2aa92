"""Errors of the RPC layer, and how any exception crosses the bus.

A failure travels as ``{"class", "module", "message", "kwargs"}``.  On the
caller's side it becomes the same class again when that class is a
:class:`~twisted_compute.exception.ComputeException` subclass already
loaded in the caller's process (``NoValidHost``, ``InstanceNotFound``,
the errors below...); anything else becomes a :class:`RemoteError`
carrying the remote class name and message.  Nothing is ever imported
because a message names it.
"""

from __future__ import annotations

import json
from typing import Any

from twisted_compute.exception import ComputeException


class UnsupportedVersion(ComputeException):
    msg_fmt = ("Endpoint does not support RPC version %(version)s. "
               "Attempted method: %(method)s")


class NoSuchMethod(ComputeException):
    msg_fmt = "Endpoint does not support RPC method %(method)s"


class MalformedMessage(ComputeException):
    msg_fmt = "Malformed RPC message: %(reason)s"


class RPCVersionCapError(ComputeException):
    msg_fmt = ("Requested message version, %(version)s is incompatible. It "
               "needs to be equal in major version and less than or equal "
               "in minor version as the specified version cap "
               "%(version_cap)s.")


class RemoteError(ComputeException):
    """A remote exception that is not one of our domain exceptions."""

    msg_fmt = "Remote error: %(exc_type)s %(value)s"

    def __init__(self, message: str | None = None, exc_type: str = "",
                 value: str = "", **kwargs):
        super().__init__(message, exc_type=exc_type, value=value, **kwargs)
        self.exc_type = exc_type
        self.value = value


def parse_version(version: str) -> tuple[int, int]:
    """``"1.3"`` -> ``(1, 3)``; ValueError for anything else."""
    if not isinstance(version, str):
        raise ValueError(f"version {version!r} is not a string")
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def version_is_compatible(ours: str, requested: str) -> bool:
    """Whether a server at ``ours`` can serve ``requested``: same major,
    requested minor not newer."""
    our_major, our_minor = parse_version(ours)
    major, minor = parse_version(requested)
    return major == our_major and minor <= our_minor


def _jsonable(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = str(value)
        out[str(key)] = value
    return out


def serialize_exception(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    if isinstance(exc, ComputeException):
        message = exc.format_message()
        kwargs = _jsonable(getattr(exc, "kwargs", {}) or {})
    else:
        message = str(exc)
        kwargs = {}
    return {"class": cls.__name__, "module": cls.__module__,
            "message": message, "kwargs": kwargs}


def _known_classes() -> dict[tuple[str, str], type]:
    found: dict[tuple[str, str], type] = {}
    todo = [ComputeException]
    while todo:
        cls = todo.pop()
        found[(cls.__module__, cls.__name__)] = cls
        todo.extend(cls.__subclasses__())
    return found


def deserialize_exception(data: Any) -> Exception:
    if not isinstance(data, dict):
        return RemoteError(exc_type="Unknown", value=repr(data))
    name = str(data.get("class", "Unknown"))
    module = str(data.get("module", ""))
    message = str(data.get("message", ""))
    kwargs = data.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        kwargs = {}
    cls = _known_classes().get((module, name))
    if cls is None:
        return RemoteError(exc_type=name, value=message)
    try:
        exc = cls(message, **kwargs)
    except Exception:
        # A subclass with its own __init__: build it without one.
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        exc.message = message
        exc.kwargs = kwargs
    return exc
