"""A ``clouds.yaml`` for a deployment, from its configuration alone.

The endpoints are the listeners' (``<api>_listen`` / ``<api>_listen_port``,
https for ``enabled_ssl_apis``; a wildcard listen address is reached on
loopback) unless ``[api] compute_link_prefix`` or ``[glance] api_servers``
/ ``[api] glance_link_prefix`` name the public URL.  The auth follows
``[api] auth_strategy``: under noauth ``password`` for the user and
project ``admin`` against the compute port's ``/identity`` (which issues
the noauth token ``admin:admin``), or ``password`` against ``[keystone_authtoken]
auth_url`` (the user, project and password are the user's own: the file
leaves the password out, for ``OS_PASSWORD`` or the CLI's prompt).

:func:`write` puts it in the state directory; :func:`export_line` is the
one shell line that points the ``openstack`` CLI at it.
"""

from __future__ import annotations

import json
import os
import shlex

#: The cloud's name in the file (``OS_CLOUD``).
CLOUD = "twisted-compute"

#: The file's name in ``state_path``.
FILE_NAME = "clouds.yaml"

#: The password written for noauth (noauth checks none; any will do).
NOAUTH_PASSWORD = "noauth"


def _listener_url(conf, api: str) -> str:
    host = conf.get("DEFAULT", f"{api}_listen")
    port = conf.get("DEFAULT", f"{api}_listen_port")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if api in conf.enabled_ssl_apis else "http"
    return f"{scheme}://{host}:{port}"


def compute_url(conf) -> str:
    """The compute API's base URL (without the ``/v2.1``)."""
    prefix = conf.api.compute_link_prefix.rstrip("/")
    return prefix or _listener_url(conf, "osapi_compute")


def image_url(conf) -> str:
    """The image API's base URL."""
    servers = [s.strip() for s in conf.glance.api_servers.split(",")
               if s.strip()]
    if servers:
        return servers[0].rstrip("/")
    prefix = conf.api.glance_link_prefix.rstrip("/")
    return prefix or _listener_url(conf, "image")


def _q(value: str) -> str:
    """A YAML scalar (JSON strings are YAML)."""
    return json.dumps(value)


def render(conf, cloud: str = CLOUD) -> str:
    """The text of a clouds.yaml for the deployment ``conf`` describes."""
    compute = compute_url(conf) + "/v2.1"
    lines = ["clouds:", f"  {cloud}:"]
    if conf.api.auth_strategy == "keystone":
        auth = conf.keystone_authtoken
        lines += [
            "    auth_type: password",
            "    auth:",
            f"      auth_url: {_q(auth.auth_url)}",
            "      username: \"admin\"",
            "      project_name: \"admin\"",
            f"      user_domain_name: {_q(auth.user_domain_name)}",
            f"      project_domain_name: {_q(auth.project_domain_name)}",
        ]
    else:
        # The compute port's /identity issues noauth tokens (user:project)
        # to any password, so the CLI knows its project as with Keystone.
        lines += [
            "    auth_type: password",
            "    auth:",
            f"      auth_url: {_q(compute_url(conf) + '/identity')}",
            "      username: \"admin\"",
            f"      password: {_q(NOAUTH_PASSWORD)}",
            "      project_name: \"admin\"",
            "      user_domain_name: \"Default\"",
            "      project_domain_name: \"Default\"",
        ]
    lines += [
        "    identity_api_version: \"3\"",
        f"    compute_endpoint_override: {_q(compute)}",
        f"    image_endpoint_override: {_q(image_url(conf))}",
        "    region_name: \"RegionOne\"",
    ]
    return "\n".join(lines) + "\n"


def path(conf) -> str:
    return os.path.join(conf.state_path, FILE_NAME)


def write(conf, cloud: str = CLOUD) -> str:
    """Write the clouds.yaml into ``state_path`` (mode 0600: it may hold
    a token) and return its path.  Blocking: call it before the reactor
    runs."""
    target = path(conf)
    os.makedirs(conf.state_path, exist_ok=True)
    temporary = target + ".tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render(conf, cloud))
    os.replace(temporary, target)
    return target


def export_line(conf, file_path: str, cloud: str = CLOUD) -> str:
    """The shell line that points the ``openstack`` CLI at the file."""
    line = (f"export OS_CLIENT_CONFIG_FILE={shlex.quote(file_path)} "
            f"OS_CLOUD={shlex.quote(cloud)}")
    if conf.api.auth_strategy == "keystone":
        line += " OS_USERNAME=admin OS_PROJECT_NAME=admin OS_PASSWORD=..."
    return line
