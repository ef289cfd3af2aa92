"""A RabbitMQ cluster of three nodes on this machine, beside the system
node (``rabbit@localhost`` on 5672, which it never touches).

Each node has its own name (``tc1@localhost``...), AMQP port
(``TC_RABBIT_CLUSTER_PORT`` + 0, 1, 2; 5701 by default), distribution
port (AMQP port + 20000) and directory under ``TC_RABBIT_CLUSTER_DIR``
(``/tmp/tc-rabbit-cluster``) holding its mnesia and log directories, pid
file, config file, env file and (empty) plugin list, all owned by the
``rabbitmq`` user.  Debian's ``rabbitmq-server -detached`` started as
root drops to that user (``su`` keeps the ``RABBITMQ_*`` variables) and
shares the system node's Erlang cookie, so ``rabbitmqctl -n tc1@localhost``
works as it does for the system node.  Nodes 2 and 3 join node 1
(``stop_app``, ``join_cluster``, ``start_app``).

Command line (``tools/rabbit-cluster`` runs this file)::

    python3 tests/integration/harness/rabbit_cluster.py start|stop|status|url|destroy

Tests use :func:`shared_cluster`: the cluster ``.ci/run`` started, or one
started for the test run and stopped when it ends.  Only the standard
library is used, so this runs before the virtualenv exists.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

CLUSTER_DIR = os.environ.get("TC_RABBIT_CLUSTER_DIR", "/tmp/tc-rabbit-cluster")
BASE_PORT = int(os.environ.get("TC_RABBIT_CLUSTER_PORT", "5701"))
SIZE = 3
RABBITMQ_SERVER = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 90.0


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def _run(args: list[str], timeout: float = 60.0, env=None
         ) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(args, 124, exc.stdout or "",
                                           f"timed out after {timeout}s")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii",
                  errors="replace") as handle:
            data = handle.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2:].split()[0] not in ("Z", "X")


class ClusterError(AssertionError):
    """A node did not start, join or stop in bounded time."""


class RabbitNode:
    """One node of the cluster: its name, ports and files."""

    def __init__(self, index: int, directory: str, amqp_port: int):
        self.index = index
        self.name = f"tc{index}@localhost"
        self.amqp_port = amqp_port
        self.dist_port = amqp_port + 20000
        self.directory = os.path.join(directory, f"tc{index}")

    def __repr__(self):
        return f"<RabbitNode {self.name} amqp={self.amqp_port}>"

    @property
    def pid_file(self) -> str:
        return os.path.join(self.directory, "pid")

    def env(self) -> dict[str, str]:
        d = self.directory
        env = dict(os.environ)
        # Our own env file: the system one names the system node.
        env.update(
            RABBITMQ_CONF_ENV_FILE=os.path.join(d, "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS=LOOPBACK,
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(d, "log"),
            RABBITMQ_PID_FILE=self.pid_file,
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq.conf"))
        return env

    def prepare(self) -> None:
        """Directories and files, owned by the ``rabbitmq`` user."""
        d = self.directory
        for sub in ("mnesia", "log"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        files = {
            "enabled_plugins": "[].\n",
            "rabbitmq.conf": (
                f"listeners.tcp.default = {LOOPBACK}:{self.amqp_port}\n"),
            "rabbitmq-env.conf": (
                "ERL_EPMD_ADDRESS=127.0.0.1\n"
                "export ERL_FLAGS=\"-kernel inet_dist_use_interface "
                "{127,0,0,1}\"\n"),
        }
        for name, text in files.items():
            with open(os.path.join(d, name), "w", encoding="ascii") as f:
                f.write(text)
        try:
            user = pwd.getpwnam("rabbitmq")
        except KeyError:
            return
        for root in (os.path.dirname(d), d):
            os.chown(root, user.pw_uid, user.pw_gid)
        for root, dirs, names in os.walk(d):
            for name in dirs + names:
                os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)

    def pid(self) -> int | None:
        """The node's VM: from its pid file, or, when the file is gone
        or stale while the node still runs (a cleaned ``/tmp``, a node
        started by hand), found by its node name (and the pid file
        written again, so that ``stop`` and ``kill`` work)."""
        try:
            with open(self.pid_file, encoding="ascii") as handle:
                pid = int(handle.read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and _alive(pid):
            return pid
        pid = self.find_by_name()
        if pid is not None:
            try:
                with open(self.pid_file, "w", encoding="ascii") as handle:
                    handle.write(f"{pid}\n")
                # The node writes the file itself when it starts again.
                user = pwd.getpwnam("rabbitmq")
                os.chown(self.pid_file, user.pw_uid, user.pw_gid)
            except (OSError, KeyError):
                pass
        return pid

    def find_by_name(self) -> int | None:
        """The pid of the running VM of this node's name: the
        ``beam.smp`` whose environment says ``RABBITMQ_NODENAME=<name>``
        (root reads every process's environment), else what ``rabbitmqctl
        -n <name>`` answers when its distribution port is open."""
        wanted = f"RABBITMQ_NODENAME={self.name}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/comm", "rb") as handle:
                    if not handle.read().startswith(b"beam"):
                        continue
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if wanted in handle.read().split(b"\0"):
                        return int(entry) if _alive(int(entry)) else None
            except OSError:
                continue
        if not _port_open(self.dist_port):
            return None
        done = self.ctl("eval", "os:getpid().", timeout=20)
        text = done.stdout.strip().strip('"')
        if done.returncode == 0 and text.isdigit() and _alive(int(text)):
            return int(text)
        return None

    def running(self) -> bool:
        """The node's VM runs (the rabbit app may still be starting)."""
        return self.pid() is not None

    def amqp_open(self) -> bool:
        return _port_open(self.amqp_port)

    def ctl(self, *args: str, timeout: float = 60.0
            ) -> subprocess.CompletedProcess:
        return _run([RABBITMQCTL, "-n", self.name, *args], timeout=timeout)

    def spawn(self) -> None:
        """``rabbitmq-server -detached`` (returns at once)."""
        if self.running():
            return
        self.prepare()
        done = _run([RABBITMQ_SERVER, "-detached"], timeout=30,
                    env=self.env())
        if done.returncode != 0:
            raise ClusterError(f"rabbitmq-server -detached for {self.name} "
                               f"exited {done.returncode}: {done.stderr}")

    def wait_started(self, timeout: float = START_TIMEOUT) -> None:
        """Until the node runs its rabbit app and its AMQP port answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = max(1.0, deadline - time.monotonic())
            done = self.ctl("await_startup", "--timeout",
                            str(int(min(left, 30))), timeout=min(left, 35) + 5)
            if done.returncode == 0 and self.amqp_open():
                return
            time.sleep(0.5)
        raise ClusterError(f"{self.name} did not start within {timeout}s; "
                           f"see {self.directory}/log")

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.spawn()
        self.wait_started(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """A clean ``rabbitmqctl stop``; SIGKILL when it does not end in
        ``timeout`` seconds."""
        pid = self.pid()
        if pid is None:
            return
        self.ctl("stop", timeout=timeout)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            self.kill()

    def kill(self) -> None:
        """``kill -9`` the node's VM (its epmd registration goes with
        it)."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


class RabbitCluster:
    """Three :class:`RabbitNode`\\ s joined into one cluster."""

    def __init__(self, directory: str = CLUSTER_DIR,
                 base_port: int = BASE_PORT, size: int = SIZE):
        self.directory = directory
        self.nodes = [RabbitNode(i + 1, directory, base_port + i)
                      for i in range(size)]

    @property
    def ports(self) -> list[int]:
        return [n.amqp_port for n in self.nodes]

    def url(self, vhost: str = "", user: str = "guest",
            password: str = "guest", first: "RabbitNode | None" = None
            ) -> str:
        """``rabbit://guest:guest@127.0.0.1:5701,...,/vhost``: every node,
        ``first`` (the node a client tries first) at the head."""
        nodes = list(self.nodes)
        if first is not None:
            at = nodes.index(first)
            nodes = nodes[at:] + nodes[:at]
        hosts = ",".join(f"{user}:{password}@{LOOPBACK}:{n.amqp_port}"
                         for n in nodes)
        return f"rabbit://{hosts}/{vhost}"

    def node(self, name_or_index) -> RabbitNode:
        for node in self.nodes:
            if name_or_index in (node.index, node.name):
                return node
        raise KeyError(name_or_index)

    def running_nodes(self) -> list[str]:
        """The cluster's running members, as node 1 (or any up node)
        sees them."""
        for node in self.nodes:
            if not node.running():
                continue
            done = node.ctl("eval",
                            "rabbit_nodes:all_running().", timeout=20)
            if done.returncode == 0:
                return sorted(part.strip(" []'\n") for part in
                              done.stdout.strip().strip("[]").split(",")
                              if part.strip(" []'\n"))
        return []

    def members(self, node: RabbitNode) -> list[str]:
        done = node.ctl("eval", "rabbit_nodes:all().", timeout=20)
        if done.returncode != 0:
            return []
        return sorted(part.strip(" []'\n") for part in
                      done.stdout.strip().strip("[]").split(",")
                      if part.strip(" []'\n"))

    def ready(self) -> bool:
        names = sorted(n.name for n in self.nodes)
        return (all(n.amqp_open() for n in self.nodes)
                and self.running_nodes() == names)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the nodes that are down (all at once: after a full stop
        each waits for its peers), join the ones not yet in the cluster,
        and wait until all three run as one cluster."""
        first = self.nodes[0]
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_started(timeout)
        for node in self.nodes[1:]:
            if first.name in self.members(node):
                continue
            for args in (("stop_app",), ("reset",),
                         ("join_cluster", first.name), ("start_app",)):
                done = node.ctl(*args, timeout=timeout)
                if done.returncode != 0 and args[0] == "join_cluster" and \
                        "inconsistent_cluster" in done.stdout + done.stderr:
                    # Node 1 still lists this (reset) node as a member:
                    # forget it there, then join again.
                    first.ctl("forget_cluster_node", node.name,
                              timeout=timeout)
                    done = node.ctl(*args, timeout=timeout)
                if done.returncode != 0:
                    raise ClusterError(
                        f"rabbitmqctl -n {node.name} {' '.join(args)}: "
                        f"{done.stdout}{done.stderr}")
            node.wait_started(timeout)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ClusterError(f"the cluster is not ready after "
                                   f"{timeout}s: {self.status()}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every node cleanly (the last one last)."""
        for node in reversed(self.nodes):
            node.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def status(self) -> dict[str, dict]:
        running = self.running_nodes()
        return {n.name: {"pid": n.pid(), "amqp_port": n.amqp_port,
                         "amqp": n.amqp_open(), "in_cluster":
                         n.name in running} for n in self.nodes}

    # --- what the tests need ------------------------------------------------

    def any_up(self) -> RabbitNode:
        for node in self.nodes:
            if node.amqp_open():
                return node
        raise ClusterError("no node of the cluster is up")

    def add_vhost(self, name: str, user: str = "guest") -> None:
        node = self.any_up()
        for args in (("add_vhost", name),
                     ("set_permissions", "-p", name, user, ".*", ".*", ".*")):
            done = node.ctl(*args)
            if done.returncode != 0:
                raise ClusterError(f"rabbitmqctl {' '.join(args)}: "
                                   f"{done.stdout}{done.stderr}")

    def delete_vhost(self, name: str) -> None:
        try:
            self.any_up().ctl("delete_vhost", name)
        except ClusterError:
            pass

    def queues(self, vhost: str, node: RabbitNode | None = None
               ) -> dict[str, dict]:
        """``{queue: {"type", "leader", "messages"}}`` of ``vhost``."""
        node = node or self.any_up()
        done = node.ctl("list_queues", "-q", "--no-table-headers", "-p",
                        vhost, "name", "type", "leader", "messages",
                        timeout=30)
        found = {}
        for line in done.stdout.splitlines():
            parts = [p.strip() for p in line.split("\t")]
            if len(parts) == 4:
                found[parts[0]] = {
                    "type": parts[1], "leader": parts[2],
                    "messages": (int(parts[3]) if parts[3].isdigit()
                                 else None)}
        return found

    def leader_of(self, vhost: str, queue: str) -> RabbitNode:
        info = self.queues(vhost).get(queue)
        if not info or not info["leader"]:
            raise ClusterError(f"no leader known for {queue} in {vhost}")
        return self.node(info["leader"])


class ClusterVhost:
    """A vhost of its own on the cluster for one deployment, like
    :class:`~tests.integration.harness.rabbitmq.RabbitVhost` on the system
    node: :attr:`url` names every node; :meth:`url_for` puts one node
    first, so that the processes of a deployment spread over the nodes."""

    def __init__(self, cluster: RabbitCluster, name: str):
        self.cluster = cluster
        self.name = name
        self.created = False

    def create(self) -> "ClusterVhost":
        self.cluster.add_vhost(self.name)
        self.created = True
        return self

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)

    def url_for(self, index: int) -> str:
        nodes = self.cluster.nodes
        return self.cluster.url(self.name, first=nodes[index % len(nodes)])

    def list_queues(self) -> dict[str, int]:
        return {name: info["messages"] or 0 for name, info in
                self.cluster.queues(self.name).items()}

    def delete(self) -> None:
        if self.created:
            if not self.cluster.ready():
                self.cluster.start()
            self.cluster.delete_vhost(self.name)
            self.created = False


_shared: RabbitCluster | None = None

#: Beside the cluster's directory (``destroy`` removes that one): the
#: lock that serialises starts and stops between processes (trial -j2
#: runs two), the lock a test holds while it uses the cluster, and one
#: file per process using it.
LOCK_FILE = CLUSTER_DIR.rstrip("/") + ".lock"
USE_LOCK_FILE = CLUSTER_DIR.rstrip("/") + ".use.lock"
USERS_DIR = CLUSTER_DIR.rstrip("/") + ".users"
#: In USERS_DIR when a test process started the cluster (and the last
#: test process to leave stops it).
STARTED_BY_TESTS = "started-by-tests"
#: Seconds a test waits for another process's test to release the cluster.
USE_TIMEOUT = float(os.environ.get("TC_RABBIT_CLUSTER_WAIT", "1800"))


@contextlib.contextmanager
def _locked(path: str = LOCK_FILE):
    with open(path, "a", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_cluster() -> RabbitCluster:
    """The cluster for this test run: started (and stopped when the last
    test process using it ends) unless it already runs; restarts
    whichever nodes a previous test left down.  Safe when several
    processes (trial -j2) ask at once: one starts it, the others wait."""
    global _shared
    with _locked():
        if _shared is None:
            cluster = RabbitCluster()
            os.makedirs(USERS_DIR, exist_ok=True)
            if not any(n.running() for n in cluster.nodes):
                open(os.path.join(USERS_DIR, STARTED_BY_TESTS), "w").close()
            open(os.path.join(USERS_DIR, str(os.getpid())), "w").close()
            atexit.register(_release, cluster)
            _shared = cluster
        if not _shared.ready():
            _shared.start()
    return _shared


def _release(cluster: RabbitCluster) -> None:
    """At exit: this process no longer uses the cluster; the last one
    stops it if a test process started it."""
    with _locked():
        with contextlib.suppress(OSError):
            os.remove(os.path.join(USERS_DIR, str(os.getpid())))
        others = [name for name in os.listdir(USERS_DIR)
                  if name.isdigit() and _alive(int(name))]
        marker = os.path.join(USERS_DIR, STARTED_BY_TESTS)
        if not others and os.path.exists(marker):
            os.remove(marker)
            cluster.destroy()


class ClusterUse:
    """Exclusive use of the cluster by one test (or one bench run) at a
    time across processes: tests kill and stop nodes, which would break
    another process's test running on it at the same moment.  Reentrant
    within a process; :meth:`release` once per :meth:`acquire`."""

    _handle = None
    _depth = 0

    @classmethod
    def acquire(cls, timeout: float = USE_TIMEOUT) -> None:
        if cls._depth:
            cls._depth += 1
            return
        handle = open(USE_LOCK_FILE, "a", encoding="ascii")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise ClusterError(
                        f"another process used the RabbitMQ cluster for "
                        f"more than {timeout:.0f} s ({USE_LOCK_FILE})")
                time.sleep(0.2)
        cls._handle, cls._depth = handle, 1

    @classmethod
    def release(cls) -> None:
        if not cls._depth:
            return
        cls._depth -= 1
        if cls._depth == 0:
            fcntl.flock(cls._handle, fcntl.LOCK_UN)
            cls._handle.close()
            cls._handle = None


def available() -> str | None:
    """Why this machine cannot run the cluster, or None."""
    if not os.path.exists(RABBITMQ_SERVER):
        return "rabbitmq-server is not installed"
    if os.geteuid() != 0:
        return "the RabbitMQ cluster needs root (rabbitmq-server drops to " \
               "the rabbitmq user)"
    return None


def require_cluster(add_cleanup=None) -> RabbitCluster:
    """:func:`shared_cluster` for a test: skipped where the machine cannot
    run it, unless ``TWISTED_COMPUTE_DEMAND`` names ``rabbitmq-cluster``
    (or ``all``), in which case the test fails.  With ``add_cleanup``
    (a test's ``addCleanup``) the test has the cluster to itself
    (:class:`ClusterUse`) until its cleanups run, after those added
    later (a node started again)."""
    reason = available()
    if reason is not None:
        wanted = os.environ.get("TWISTED_COMPUTE_DEMAND", "").replace(",", " ")
        if {"all", "rabbitmq-cluster"} & set(wanted.lower().split()):
            raise ClusterError(f"{reason}, and TWISTED_COMPUTE_DEMAND "
                               f"demands rabbitmq-cluster")
        raise unittest.SkipTest(reason)
    if add_cleanup is not None:
        ClusterUse.acquire()
        add_cleanup(ClusterUse.release)
    return shared_cluster()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    cluster = RabbitCluster()
    if command == "start":
        started = time.monotonic()
        cluster.start()
        print(f"cluster {', '.join(n.name for n in cluster.nodes)} ready in "
              f"{time.monotonic() - started:.1f} s: {cluster.url()}")
    elif command == "stop":
        cluster.stop()
        print("cluster stopped")
    elif command == "destroy":
        cluster.destroy()
        print(f"cluster stopped and {cluster.directory} removed")
    elif command == "status":
        status = cluster.status()
        for name, info in status.items():
            print(f"{name}: pid {info['pid']} amqp {info['amqp_port']} "
                  f"{'open' if info['amqp'] else 'closed'}"
                  f"{', in cluster' if info['in_cluster'] else ''}")
        return 0 if cluster.ready() else 3
    elif command == "url":
        print(cluster.url())
    else:
        print(f"usage: {argv[0]} start|stop|destroy|status|url",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
