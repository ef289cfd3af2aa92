"""Remote console types: which are known, which enabled, and the URL a
user is given for a token (Nova's forms).

``novnc``: ``[vnc] novncproxy_base_url?path=%3Ftoken%3D<token>`` (noVNC
1.1 and later read the websocket path from ``path``); every other type:
``<base_url>?token=<token>``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from twisted_compute import exception
from twisted_compute.objects import vm_states
from twisted_compute.objects.console import CONSOLE_PROTOCOLS

#: The vm_states in which a guest has a console to reach.
CONSOLE_VM_STATES = (vm_states.ACTIVE, vm_states.PAUSED)
#: Tasks during which no console is handed out (as Nova's
#: ``reject_instance_state``).
NO_CONSOLE_TASK_STATES = (vm_states.DELETING, vm_states.MIGRATING)
#: Types twisted-compute's drivers can serve.
SUPPORTED_TYPES = ("novnc", "serial")


def check_type(conf, console_type: str) -> str:
    """The protocol of ``console_type``; 400 for an unknown type or a
    disabled one, 501 for a type no driver here has."""
    protocol = CONSOLE_PROTOCOLS.get(console_type)
    if protocol is None:
        raise exception.ConsoleTypeInvalid(console_type=console_type)
    enabled = {"vnc": conf.vnc.enabled,
               "serial": conf.serial_console.enabled,
               "spice": conf.spice.enabled}.get(protocol, True)
    if not enabled:
        raise exception.ConsoleTypeUnavailable(console_type=console_type)
    if console_type not in SUPPORTED_TYPES:
        raise exception.ConsoleNotSupported(console_type=console_type,
                                            driver="configured")
    return protocol


def base_url(conf, console_type: str) -> str:
    if console_type == "novnc":
        return conf.vnc.novncproxy_base_url
    if console_type == "serial":
        return conf.serial_console.base_url
    return conf.spice.html5proxy_base_url


def access_url(conf, console_type: str, token: str) -> str:
    base = base_url(conf, console_type)
    if console_type == "novnc":
        return f"{base}?{urlencode({'path': f'?token={token}'})}"
    return f"{base}?token={token}"
