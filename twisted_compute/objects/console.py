"""Remote consoles: where a guest's console is (what an agent answers),
and the console auth token that lets one client reach it."""

from __future__ import annotations

import attrs

from twisted_compute.objects import Record

#: Console types and the protocol each belongs to (Nova's names).
CONSOLE_PROTOCOLS = {
    "novnc": "vnc",
    "xvpvnc": "vnc",
    "serial": "serial",
    "spice-html5": "spice",
    "spice-direct": "spice",
    "rdp-html5": "rdp",
    "webmks": "mks",
}


@attrs.frozen
class ConsoleInfo(Record):
    """Where the console proxy connects for one guest's console: on the
    compute host, ``host:port`` (``tls_port`` for SPICE's TLS), with
    ``internal_access_path`` a path to send first where the console
    needs one (None for VNC and serial)."""

    console_type: str
    host: str
    port: int
    internal_access_path: str | None = None
    tls_port: int | None = None


@attrs.frozen
class ConsoleAuthToken(Record):
    """A stored console token (the token itself is never stored: only
    its SHA-256).  ``expires`` is a Unix time in seconds."""

    id: int
    instance_uuid: str
    console_type: str
    host: str
    port: int
    internal_access_path: str | None
    tls_port: int | None
    expires: int
