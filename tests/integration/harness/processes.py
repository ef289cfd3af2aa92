"""Processes and ports for the integration tests: the programs of this
virtualenv, free loopback ports, the process tree under ``/proc``, bounded
polling and commands run to their end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

BIN = os.path.dirname(os.path.abspath(sys.executable))
TWISTD = os.path.join(BIN, "twistd")
COMPUTE_MANAGE = os.path.join(BIN, "compute-manage")
OPENSTACK = os.path.join(BIN, "openstack")

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (bind port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --- processes ------------------------------------------------------------

def ppid_of(pid: int) -> int | None:
    """The parent pid of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii",
                  errors="replace") as handle:
            data = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[1])


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii",
                  errors="replace") as handle:
            data = handle.read()
    except OSError:
        return True
    return data[data.rindex(")") + 2:].split()[0] in ("Z", "X")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    return os.path.exists(f"/proc/{pid}") and not is_zombie(pid)


def children_of(pid: int) -> list[int]:
    """Running processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and ppid_of(int(entry)) == pid \
                and alive(int(entry)):
            found.append(int(entry))
    return sorted(found)


def descendants_of(pid: int) -> list[int]:
    result, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            result.append(child)
            todo.append(child)
    return result


def wait_until(predicate, timeout: float, interval: float = 0.05,
               message: str = "condition"):
    """Poll ``predicate`` until it returns something true (returned) or
    ``timeout`` seconds pass (AssertionError naming ``message``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{message}")
        time.sleep(interval)


def run_command(args: list[str], timeout: float = 60.0,
                env: dict[str, str] | None = None,
                cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run a command to its end (bounded); stdout and stderr as text."""
    return subprocess.run(args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=env, cwd=cwd, check=False)
