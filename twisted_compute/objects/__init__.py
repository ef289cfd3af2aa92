"""attrs records: what crosses the DB boundary and the bus.

Records are frozen; ``to_dict``/``from_dict`` give their bus form.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs


def _encode(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__datetime__"}:
            return datetime.datetime.fromisoformat(value["__datetime__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class Record:
    """Mixin: conversion of an attrs record to and from its bus form."""

    def to_dict(self, exclude: frozenset[str] | tuple = ()
                ) -> dict[str, Any]:
        """The bus form; fields named in ``exclude`` are left out (a
        message that carries them once elsewhere)."""
        return {f.name: _encode(getattr(self, f.name))
                for f in attrs.fields(type(self)) if f.name not in exclude}

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: _decode(v) for k, v in values.items()
                      if k in names})
