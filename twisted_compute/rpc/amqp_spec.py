"""The AMQP 0-9-1 spec txamqp needs, loaded once and checked.

txamqp traps handled here: the wheel ships no spec (we load the 0-9-1
rabbit spec from Debian's ``amqp-specs``); property names follow the spec
flavour and unknown keys are dropped silently (we look the names up in the
loaded spec and refuse a spec without them).
"""

from __future__ import annotations

import os
from typing import Any

from txamqp import spec as txamqp_spec

from twisted_compute import exception


class SpecError(exception.ComputeException):
    msg_fmt = "AMQP spec %(path)s is unusable: %(reason)s"


_specs: dict[str, Any] = {}


def load_spec(path: str):
    """Load (once) and check the 0-9-1 spec txamqp needs."""
    if path in _specs:
        return _specs[path]
    # Checked first: given a missing file, xml.sax would try it as a URL.
    if not os.path.isfile(path):
        raise SpecError(path=path, reason=(
            "no such file; install the Debian package amqp-specs or set "
            "[oslo_messaging_rabbit] amqp_spec_path"))
    try:
        loaded = txamqp_spec.load(path)
    except Exception as exc:
        raise SpecError(path=path, reason=str(exc)) from None
    if (loaded.major, loaded.minor) != (0, 9):
        raise SpecError(path=path, reason="not an AMQP 0-9-1 spec")
    if "confirm" not in loaded.classes.byname:
        raise SpecError(path=path, reason=(
            "no confirm class (publisher confirms): use RabbitMQ's "
            "extended 0-9-1 spec"))
    _specs[path] = loaded
    return loaded


def property_names(loaded_spec) -> dict[str, str]:
    """Map our canonical property names (``correlation-id``) to the names
    the loaded spec uses (``correlation-id`` or ``correlation id``):
    txamqp drops unknown property keys without a word."""
    names = {f.name.replace(" ", "-").replace("_", "-"): f.name
             for f in loaded_spec.classes.byname["basic"].fields}
    wanted = ("content-type", "delivery-mode", "correlation-id", "reply-to",
              "message-id", "expiration")
    missing = [name for name in wanted if name not in names]
    if missing:
        raise SpecError(path=loaded_spec.file, reason=(
            "basic class lacks properties " + ", ".join(missing)))
    return names
