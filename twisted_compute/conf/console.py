"""``[vnc]``, ``[serial_console]``, ``[spice]``, ``[console]`` and
``[consoleauth]``: remote consoles, their tokens and the console proxy
(:mod:`twisted_compute.console`), with Nova's names and defaults."""

from __future__ import annotations

from twisted_compute.conf.opts import (
    OptGroups, bool_opt, float_opt, int_opt, list_opt, port_opt, str_opt)

#: The VNC security types the proxy can negotiate with a guest's VNC
#: server (VeNCrypt is not implemented yet).
AUTH_SCHEMES = ("none",)

VNC_OPTS = [
    bool_opt("enabled", True,
             "Give guests a VNC graphics device and answer noVNC "
             "console requests"),
    str_opt("novncproxy_host", "0.0.0.0",
            "Address the console proxy's noVNC listener binds"),
    port_opt("novncproxy_port", 6080,
             "Port of the console proxy's noVNC listener"),
    str_opt("novncproxy_base_url", "http://127.0.0.1:6080/vnc_auto.html",
            "The noVNC page users open, as their browser reaches the "
            "proxy; the token is appended as ?path=%3Ftoken%3D..."),
    str_opt("server_listen", "127.0.0.1",
            "Address the guests' VNC servers listen on (on the compute "
            "host)"),
    str_opt("server_proxyclient_address", "127.0.0.1",
            "Address of the compute host the console proxy connects to "
            "for a guest's VNC server"),
    list_opt("auth_schemes", ["none"],
             "VNC security types the proxy accepts from the guest's VNC "
             "server, in order of preference", choices=AUTH_SCHEMES),
    str_opt("novnc_path", "/usr/share/novnc",
            "Directory of the noVNC web client the proxy serves "
            "(Debian's novnc package)"),
]

SERIAL_CONSOLE_OPTS = [
    bool_opt("enabled", False,
             "Give guests a TCP serial port and answer serial console "
             "requests"),
    str_opt("serialproxy_host", "0.0.0.0",
            "Address the console proxy's serial websocket listener binds"),
    port_opt("serialproxy_port", 6083,
             "Port of the console proxy's serial websocket listener"),
    str_opt("base_url", "ws://127.0.0.1:6083/",
            "The websocket URL users connect to, as they reach the proxy; "
            "the token is appended as ?token=..."),
    str_opt("proxyclient_address", "127.0.0.1",
            "Address the guests' TCP serial ports bind, and the console "
            "proxy connects to"),
    str_opt("port_range", "10000:20000",
            "MIN:MAX, the TCP ports guests' serial consoles are given"),
]

SPICE_OPTS = [
    bool_opt("enabled", False,
             "SPICE consoles (no driver of twisted-compute has one yet)"),
    str_opt("html5proxy_base_url", "http://127.0.0.1:6082/spice_auto.html",
            "The SPICE HTML5 page users open"),
]

CONSOLE_OPTS = [
    list_opt("allowed_origins", [],
             "Hosts (names or addresses, without scheme or port) a "
             "browser's Origin may name besides the proxy's own host"),
    int_opt("max_connections_per_token", 4,
            "Websocket connections one console token may have open at "
            "once", min=1),
    int_opt("max_connections", 1000,
            "Websocket connections the console proxy holds in all", min=1),
    float_opt("idle_timeout", 3600.0,
              "Seconds a console connection may pass no bytes either way "
              "before the proxy closes it (0: never)", min=0),
    float_opt("connect_timeout", 10.0,
              "Seconds the proxy waits for a guest's console port to "
              "accept, and for the VNC handshake", min=0.1),
    int_opt("buffer_bytes", 262144,
            "Bytes the proxy holds for a slow side before it pauses the "
            "other", min=4096),
    float_opt("purge_interval", 300.0,
              "Seconds between purges of expired console tokens (0: "
              "never)", min=0),
]

CONSOLEAUTH_OPTS = [
    int_opt("token_ttl", 600,
            "Seconds a console token stays valid", min=1),
]


def list_opts() -> OptGroups:
    return [("vnc", VNC_OPTS), ("serial_console", SERIAL_CONSOLE_OPTS),
            ("spice", SPICE_OPTS), ("console", CONSOLE_OPTS),
            ("consoleauth", CONSOLEAUTH_OPTS)]
