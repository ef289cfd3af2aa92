"""What the libvirt agent checks before it serves, each failure said in
one line with what to do.

Without these, a stopped libvirt network or an ``images_path`` that the
qemu user cannot reach only showed up as builds failing later.  The
checks run once, while the agent's process is being made (before the
reactor runs, so their few blocking calls are harmless), on a connection
of their own; a failure is a :class:`StartCheckFailed` whose message the
agent's role turns into ``SystemExit``.

* libvirt's version: at least :data:`MIN_LIBVIRT_VERSION`;
* the libvirt network ``[libvirt] network`` exists and is active;
* every directory down to ``[libvirt] images_path`` can be searched by
  the user qemu runs as (``qemu:///system`` with ``virt_type`` kvm or
  qemu only: a session or test hypervisor runs as the agent's own user).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from typing import Callable

#: The oldest libvirt the driver supports (major, minor, release).
MIN_LIBVIRT_VERSION = (7, 0, 0)

#: Where libvirtd's qemu driver names the user it runs guests as.
QEMU_CONF = "/etc/libvirt/qemu.conf"

#: The user when qemu.conf names none, by distribution family.
DEFAULT_QEMU_USERS = ("libvirt-qemu", "qemu")


class StartCheckFailed(Exception):
    """A start check failed; the message says what to do."""


def version_tuple(number: int) -> tuple[int, int, int]:
    """libvirt's ``major * 1000000 + minor * 1000 + release``."""
    return number // 1000000, number // 1000 % 1000, number % 1000


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def check_version(conn, uri: str) -> None:
    found = version_tuple(int(conn.getLibVersion()))
    if found < MIN_LIBVIRT_VERSION:
        raise StartCheckFailed(
            f"[libvirt] connection_uri {uri}: libvirt {_dotted(found)} is "
            f"older than {_dotted(MIN_LIBVIRT_VERSION)}, the oldest this "
            f"driver supports; upgrade libvirt on this host")


def check_network(conn, uri: str, network: str, libvirt_module) -> None:
    try:
        net = conn.networkLookupByName(network)
    except libvirt_module.libvirtError:
        raise StartCheckFailed(
            f"[libvirt] network {network!r} is not defined on {uri}: "
            f"define it (virsh -c {uri} net-define FILE.xml) or set "
            f"[libvirt] network to one of `virsh -c {uri} net-list "
            f"--all`") from None
    if not net.isActive():
        raise StartCheckFailed(
            f"[libvirt] network {network!r} on {uri} is not active: run "
            f"`virsh -c {uri} net-start {network}` (and `virsh -c {uri} "
            f"net-autostart {network}` to keep it up after a reboot)")


def qemu_user(conf_path: str = QEMU_CONF) -> str | None:
    """The user qemu.conf names (``user = "..."``), else the first of
    :data:`DEFAULT_QEMU_USERS` that exists, else None."""
    try:
        with open(conf_path, encoding="utf-8") as handle:
            for line in handle:
                match = re.match(r'\s*user\s*=\s*"([^"]+)"', line)
                if match:
                    return match.group(1).lstrip("+")
    except OSError:
        pass
    for name in DEFAULT_QEMU_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


def _ids(user: str) -> tuple[int, set[int]] | None:
    """``(uid, gids)`` of a user name or ``+uid``; None when unknown."""
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() \
            else pwd.getpwnam(user)
    except (KeyError, ValueError):
        return None
    gids = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall()
                             if entry.pw_name in g.gr_mem}
    return entry.pw_uid, gids


def blocking_directory(path: str, uid: int, gids: set[int],
                       stat_fn: Callable = os.stat) -> tuple[str, int] | None:
    """The first directory from ``/`` down to ``path`` (included) that
    ``uid`` (with groups ``gids``) cannot search, with its mode; None when
    all can be."""
    if uid == 0:
        return None
    path = os.path.abspath(path)
    parts = [part for part in path.split(os.sep) if part]
    current = os.sep
    for part in [None] + parts:
        if part is not None:
            current = os.path.join(current, part)
        info = stat_fn(current)
        mode = info.st_mode
        if info.st_uid == uid:
            allowed = mode & stat.S_IXUSR
        elif info.st_gid in gids:
            allowed = mode & stat.S_IXGRP
        else:
            allowed = mode & stat.S_IXOTH
        if not allowed:
            return current, stat.S_IMODE(mode)
    return None


def check_images_path(images_path: str, user: str | None,
                      stat_fn: Callable = os.stat) -> None:
    if user is None:
        return
    ids = _ids(user)
    if ids is None:
        return
    uid, gids = ids
    blocked = blocking_directory(images_path, uid, gids, stat_fn)
    if blocked is not None:
        directory, mode = blocked
        raise StartCheckFailed(
            f"[libvirt] images_path {images_path} cannot be reached by the "
            f"qemu user {user}: {directory} has mode {mode:04o}; run "
            f"`chmod o+x {directory}` or set [libvirt] images_path to a "
            f"directory that {user} can reach")


def run_checks(conn, *, uri: str, network: str, images_path: str,
               virt_type: str, libvirt_module,
               user_of_qemu: Callable[[], str | None] = qemu_user) -> None:
    """Every start check on ``conn`` (blocking); raises
    :class:`StartCheckFailed` at the first that fails."""
    check_version(conn, uri)
    check_network(conn, uri, network, libvirt_module)
    if virt_type in ("kvm", "qemu") and uri.endswith(":///system"):
        os.makedirs(images_path, mode=0o755, exist_ok=True)
        check_images_path(images_path, user_of_qemu())
