"""Run real ``twistd`` processes of twisted-compute and talk to them.

:class:`TwistdProcess` writes a config file into a temporary directory
(free loopback ports for each API, a database migrated first with
``compute-manage db sync``, ``[api] auth_strategy = noauth``,
``state_path`` in the directory), starts ``twistd -n --pidfile= ROLE
--config-file F`` from this virtualenv with its output in a log file,
waits (bounded, polling) until every API answers, and stops it with
SIGTERM, then SIGKILL (and its child processes, by pid) at cleanup.

:class:`TwistdTestCase` is a :class:`SynchronousTestCase` for tests that
use such processes: ``self.start_twistd(...)`` for a process of one test,
``shared = {...}`` for one process shared by the tests of a class; a test
that fails gets the tail of every process's log appended to its failure.

HTTP is plain :mod:`http.client` with timeouts: the tests are synchronous,
bounded and need no reactor.
"""

from __future__ import annotations

import atexit
import datetime
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterable

from twisted.trial.unittest import SynchronousTestCase

from tests import base

BIN = os.path.dirname(os.path.abspath(sys.executable))
TWISTD = os.path.join(BIN, "twistd")
COMPUTE_MANAGE = os.path.join(BIN, "compute-manage")
OPENSTACK = os.path.join(BIN, "openstack")

LOOPBACK = "127.0.0.1"
#: seconds a process gets to answer on its ports after start
START_TIMEOUT = 30.0
#: seconds a process gets to exit after SIGTERM before SIGKILL
STOP_TIMEOUT = 10.0


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


# --- HTTP -----------------------------------------------------------------

class Response:
    """An HTTP response: ``code``, ``headers`` (lower-case names),
    ``body`` (bytes), ``json``."""

    def __init__(self, code: int, headers: dict[str, str], body: bytes):
        self.code = code
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<Response {self.code} {self.body[:300]!r}>"


def http_request(host: str, port: int, method: str, path: str,
                 body: Any = None, token: str | None = "admin:admin",
                 version: str | None = None,
                 headers: dict[str, str] | None = None,
                 raw: bytes | None = None, timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> Response:
    """One request on a new connection; ``token`` goes in X-Auth-Token,
    ``version`` in ``OpenStack-API-Version: compute <version>``."""
    all_headers = {"Accept": "application/json"}
    if token is not None:
        all_headers["X-Auth-Token"] = token
    if version is not None:
        all_headers["OpenStack-API-Version"] = f"compute {version}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    if tls is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=tls)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        content = response.read()
        return Response(response.status,
                        {k.lower(): v for k, v in response.getheaders()},
                        content)
    finally:
        conn.close()


# --- TLS ------------------------------------------------------------------

def make_self_signed(directory: str, host: str = LOOPBACK
                     ) -> tuple[str, str]:
    """A self-signed certificate for ``host`` (as IP SAN and CN) and its
    key, written as PEM files in ``directory``; returns their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                       critical=True)
        .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
    return cert_path, key_path


# --- the database ---------------------------------------------------------

_SQLITE_TEMPLATE: str | None = None


def _write_ini(path: str, sections: dict[str, dict[str, Any]]) -> None:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for name, value in values.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                value = ",".join(value)
            lines.append(f"{name} = {value}")
        lines.append("")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def db_sync(config_file: str, timeout: float = 60.0) -> None:
    """``compute-manage --config-file F db sync`` (AssertionError with its
    output when it fails)."""
    done = run_command([COMPUTE_MANAGE, "--config-file", config_file,
                        "db", "sync"], timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(
            f"compute-manage db sync failed ({done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}")


def migrated_sqlite_file(path: str) -> None:
    """Make ``path`` a SQLite file migrated by ``compute-manage db sync``
    (run once per test run into a template, then copied)."""
    global _SQLITE_TEMPLATE
    if _SQLITE_TEMPLATE is None or not os.path.exists(_SQLITE_TEMPLATE):
        directory = tempfile.mkdtemp(prefix="tc-it-template-")
        template = os.path.join(directory, "template.sqlite")
        conf = os.path.join(directory, "manage.conf")
        _write_ini(conf, {"DEFAULT": {"state_path": directory},
                          "database": {"connection": "sqlite:///" + template}})
        db_sync(conf)
        _SQLITE_TEMPLATE = template
        atexit.register(shutil.rmtree, directory, True)
    shutil.copy(_SQLITE_TEMPLATE, path)


# --- a twistd process -----------------------------------------------------

class TwistdProcess(base.HTTPVerbs):
    """One ``twistd -n ROLE`` process with its own config, ports, database
    and log, in a temporary directory.

    ``apis``: what goes in ``enabled_apis`` (each known API gets a free
    port on 127.0.0.1); ``workers``: ``{api: n}``; ``options``:
    ``{section: {name: value}}`` added to (and overriding) the generated
    config; ``database``: ``"sqlite"`` (migrated), ``"sqlite-empty"``
    (not migrated), ``"postgresql"`` (a fresh migrated database, dropped
    at cleanup; skips when PostgreSQL is unreachable unless demanded), or
    any SQLAlchemy URL (used as it is).  Roles that serve HTTP
    (``compute-api``, ``compute-all``) are ready when every API answers;
    ``ready_pattern`` (a regex) is waited for in the log as well, and is
    how other roles say they are ready.
    """

    def __init__(self, role: str = "compute-api",
                 apis: Iterable[str] = ("osapi_compute",),
                 workers: dict[str, int] | None = None,
                 options: dict[str, dict[str, Any]] | None = None,
                 database: str = "sqlite",
                 ssl_apis: Iterable[str] = (),
                 ready_pattern: str | None = None):
        self.role = role
        self.ready_pattern = ready_pattern
        self.apis = list(apis)
        self.workers = dict(workers or {})
        self.ssl_apis = list(ssl_apis)
        self.extra_options = options or {}
        self.database = database
        self.directory = tempfile.mkdtemp(prefix="tc-it-")
        self.config_file = os.path.join(self.directory, "compute.conf")
        self.log_file = os.path.join(self.directory, "twistd.log")
        self.ports: dict[str, int] = {}
        self.db_url: str | None = None
        self._pg_url: str | None = None
        self.process: subprocess.Popen | None = None
        self._log_handle = None
        self.cert_file: str | None = None
        self._known_pids: set[int] = set()
        self._prepared = False

    # set-up

    def prepare(self) -> None:
        """Write the config file and make the database (once)."""
        if self._prepared:
            return
        from twisted_compute.config import API_NAMES
        default: dict[str, Any] = {
            "state_path": self.directory,
            "enabled_apis": ",".join(self.apis),
            "debug": "false",
        }
        for api in API_NAMES:
            self.ports[api] = free_port()
            default[f"{api}_listen"] = LOOPBACK
            default[f"{api}_listen_port"] = self.ports[api]
            default[f"{api}_workers"] = self.workers.get(api, 1)
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": default,
            "api": {"auth_strategy": "noauth"},
            "database": {},
        }
        if self.ssl_apis:
            self.cert_file, key_file = make_self_signed(self.directory)
            default["enabled_ssl_apis"] = ",".join(self.ssl_apis)
            sections["ssl"] = {"cert_file": self.cert_file,
                               "key_file": key_file}
        if self.database in ("sqlite", "sqlite-empty"):
            path = os.path.join(self.directory, "compute.sqlite")
            self.db_url = "sqlite:///" + path
            if self.database == "sqlite":
                migrated_sqlite_file(path)
        elif self.database == "postgresql":
            self._pg_url = self.db_url = base.postgresql_url()
        else:
            self.db_url = self.database
        sections["database"]["connection"] = self.db_url
        for section, values in self.extra_options.items():
            sections.setdefault(section, {}).update(values)
        _write_ini(self.config_file, sections)
        if self.database == "postgresql":
            db_sync(self.config_file)
        self._prepared = True

    def argv(self) -> list[str]:
        return [TWISTD, "-n", "--pidfile=", self.role,
                "--config-file", self.config_file]

    def start(self, wait: bool = True,
              timeout: float = START_TIMEOUT) -> "TwistdProcess":
        """Start the process; with ``wait``, return once every enabled,
        known API answers HTTP (AssertionError with the log otherwise)."""
        self.prepare()
        self._log_handle = open(self.log_file, "ab")
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=self._log_handle,
            stderr=subprocess.STDOUT, cwd=self.directory, env=env)
        self._known_pids.add(self.process.pid)
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def served_apis(self) -> list[str]:
        from twisted_compute.config import API_NAMES
        if self.role not in ("compute-api", "compute-all"):
            return []
        return [api for api in self.apis if api in API_NAMES]

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for api in self.served_apis():
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"twistd exited with {self.process.returncode} "
                        f"before {api} answered\n{self.describe()}")
                try:
                    self.request("GET", "/", api=api, token=None,
                                 timeout=2.0)
                    break
                except (OSError, http.client.HTTPException):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{api} did not answer on port {self.ports[api]} "
                        f"within {timeout}s\n{self.describe()}")
                time.sleep(0.05)
        if self.ready_pattern is not None:
            regex = re.compile(self.ready_pattern)
            while not regex.search(self.log_text()):
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"twistd exited with {self.process.returncode} "
                        f"before logging {self.ready_pattern!r}\n"
                        f"{self.describe()}")
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"no {self.ready_pattern!r} in the log within "
                        f"{timeout}s\n{self.describe()}")
                time.sleep(0.05)

    def run_to_exit(self, timeout: float = START_TIMEOUT) -> tuple[int, str]:
        """Start the process and wait for it to end by itself (for
        start-up failures); returns (exit code, log text)."""
        self.start(wait=False)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"twistd did not exit within {timeout}s\n"
                f"{self.describe()}") from None
        return code, self.log_text()

    # talking to it

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this process's certificate."""
        assert self.cert_file is not None
        context = ssl.create_default_context(cafile=self.cert_file)
        return context

    def scheme(self, api: str) -> str:
        return "https" if api in self.ssl_apis else "http"

    def url(self, api: str = "osapi_compute") -> str:
        return f"{self.scheme(api)}://{LOOPBACK}:{self.ports[api]}"

    def request(self, method: str, path: str, api: str = "osapi_compute",
                **kwargs) -> Response:
        if api in self.ssl_apis and "tls" not in kwargs:
            kwargs["tls"] = self.tls_context()
        return http_request(LOOPBACK, self.ports[api], method, path,
                            **kwargs)

    # the log

    def log_text(self) -> str:
        try:
            with open(self.log_file, encoding="utf-8",
                      errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = 10.0,
                     count: int = 1) -> list[re.Match]:
        """Wait until ``pattern`` (a regex) matched ``count`` times in the
        log; returns the matches."""
        regex = re.compile(pattern)

        def found():
            matches = list(regex.finditer(self.log_text()))
            return matches if len(matches) >= count else None

        try:
            return wait_until(found, timeout, message=repr(pattern))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def describe(self, lines: int = 40) -> str:
        state = "not started"
        if self.process is not None:
            code = self.process.poll()
            state = (f"pid {self.process.pid}, running" if code is None
                     else f"pid {self.process.pid}, exit code {code}")
        return (f"--- {' '.join(self.argv()[1:])} ({state}); last "
                f"{lines} lines of {self.log_file}:\n{self.log_tail(lines)}"
                f"\n---")

    # processes

    def children(self) -> list[int]:
        """Running child processes of the twistd process."""
        if self.process is None:
            return []
        found = children_of(self.process.pid)
        self._known_pids.update(found)
        return found

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM to the twistd process only, wait up to ``timeout``,
        then SIGKILL it.  Returns its exit code; its child processes are
        left to it (see :meth:`stop`)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._known_pids.update(descendants_of(self.process.pid))
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """:meth:`terminate`, then SIGKILL (by pid) any child process that
        outlived the parent.  Returns the parent's exit code."""
        if self.process is None:
            return None
        code = self.terminate(timeout)
        for pid in self._known_pids - {self.process.pid}:
            if alive(pid) and self._ours(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        return code

    def _ours(self, pid: int) -> bool:
        """Whether ``pid`` still is a process of this test (its command
        line names our config file), so a reused pid is never killed."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return self.config_file.encode() in handle.read()
        except OSError:
            return False

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            keep = os.environ.get("TWISTED_COMPUTE_KEEP_LOGS")
            if keep and os.path.exists(self.log_file):
                # Debugging aid: keep every process's log after the run.
                os.makedirs(keep, exist_ok=True)
                name = (f"{self.role}-{getattr(self, 'host', None) or ''}-"
                        f"{os.path.basename(self.directory)}.log")
                shutil.copy(self.log_file, os.path.join(keep, name))
            if self._pg_url is not None:
                url, self._pg_url = self._pg_url, None
                base.drop_postgresql(url)
            shutil.rmtree(self.directory, ignore_errors=True)


# --- test cases -----------------------------------------------------------

class _FailureWatcher:
    """Wraps a trial result: a failure or error of a test gets the log
    tails of the test's processes appended to its message.  Trial reports
    a failure as soon as the test method fails, before the cleanups, so
    the processes and their logs are still there."""

    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        return getattr(self._result, name)

    @staticmethod
    def _augment(test, fail):
        processes = getattr(test, "_processes", None) or []
        value = getattr(fail, "value", None)
        if not processes or value is None:
            return
        text = str(value)
        if "--- " in text and " lines of " in text:
            return  # the message already shows a log
        tails = "\n".join(proc.describe() for proc in processes)
        if isinstance(value, AssertionError):
            try:
                value.args = (f"{text}\n{tails}",)
            except (AttributeError, TypeError):
                pass
        if tails not in str(value):
            sys.stderr.write(f"\n{test.id()}:\n{tails}\n")

    def addFailure(self, test, fail):
        self._augment(test, fail)
        return self._result.addFailure(test, fail)

    def addError(self, test, error):
        self._augment(test, error)
        return self._result.addError(test, error)


_SHARED: dict[type, dict[str, Any]] = {}


def _stop_all_shared():
    for entry in list(_SHARED.values()):
        entry["process"].cleanup()
    _SHARED.clear()


atexit.register(_stop_all_shared)


class TwistdTestCase(SynchronousTestCase):
    """A test case using real twistd processes.

    ``shared``: keyword arguments of :class:`TwistdProcess` for one process
    shared by all tests of the class (``self.proc``), started by the first
    test and stopped after the last one (or at exit).
    """

    shared: dict[str, Any] | None = None

    def run(self, result):
        self._processes: list[TwistdProcess] = []
        super().run(_FailureWatcher(result))

    def setUp(self):
        super().setUp()
        if not hasattr(self, "_processes"):
            self._processes = []
        if self.shared is not None:
            self.proc = self._shared_process()

    def start_twistd(self, wait: bool = True, **kwargs) -> TwistdProcess:
        """A process for this test only, stopped at cleanup."""
        proc = TwistdProcess(**kwargs)
        self._processes.append(proc)
        self.addCleanup(proc.cleanup)
        proc.start(wait=wait)
        return proc

    def make_twistd(self, **kwargs) -> TwistdProcess:
        """A process for this test, not started (``run_to_exit``)."""
        proc = TwistdProcess(**kwargs)
        self._processes.append(proc)
        self.addCleanup(proc.cleanup)
        return proc

    def _shared_process(self) -> TwistdProcess:
        cls = type(self)
        entry = _SHARED.get(cls)
        if entry is None:
            proc = TwistdProcess(**self.shared)
            entry = _SHARED[cls] = {"process": proc, "ran": set()}
            try:
                proc.start()
            except BaseException:
                _SHARED.pop(cls, None)
                proc.cleanup()
                raise
        proc = entry["process"]
        self._processes.append(proc)
        if not proc.running():
            raise AssertionError(
                f"the shared twistd process died\n{proc.describe()}")
        entry["ran"].add(self._testMethodName)
        names = {name for name in dir(cls) if name.startswith("test")
                 and callable(getattr(cls, name))}
        if names <= entry["ran"]:
            self.addCleanup(self._stop_shared, cls)
        return proc

    @staticmethod
    def _stop_shared(cls):
        entry = _SHARED.pop(cls, None)
        if entry is not None:
            entry["process"].cleanup()

    def assertFault(self, response: Response, code: int,
                    contains: str | None = None) -> dict:
        """Assert a Nova fault body with ``code``; return its inner dict."""
        from twisted_compute.api.faults import FAULT_NAMES
        self.assertEqual(response.code, code, response)
        body = response.json
        name = FAULT_NAMES.get(code, "computeFault")
        self.assertEqual(list(body), [name], body)
        self.assertEqual(body[name]["code"], code, body)
        if contains is not None:
            self.assertIn(contains, body[name]["message"])
        return body[name]


# --- processes of a deployment (added for the control-plane tests) --------

#: what a role logs once it serves its topic (``{host}`` is filled in)
ROLE_READY = {
    "compute-conductor": r"nova-conductor serving topic conductor on host "
                         r"{host}\b",
    "compute-scheduler": r"nova-scheduler serving topic scheduler on host "
                         r"{host}\b",
    "compute-agent": r"nova-compute serving topic compute on host {host}\b",
}

RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
RABBIT_PORT = 5672


def kill_process(proc: "TwistdProcess", sig: int = signal.SIGKILL,
                 timeout: float = STOP_TIMEOUT) -> int | None:
    """Send ``sig`` (default SIGKILL, i.e. ``kill -9``) to the twistd
    process itself and wait (bounded) for it to end; returns its exit
    code (negative: the signal)."""
    if proc.process is None or proc.process.poll() is not None:
        return None if proc.process is None else proc.process.returncode
    proc._known_pids.update(descendants_of(proc.process.pid))
    proc.process.send_signal(sig)
    try:
        return proc.process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def rabbitmqctl(*args: str, timeout: float = 60.0
                ) -> subprocess.CompletedProcess:
    """``rabbitmqctl ARGS`` to its end (bounded)."""
    return run_command([RABBITMQCTL, *args], timeout=timeout)


def rabbit_reachable(port: int = RABBIT_PORT) -> bool:
    return base.reachable(LOOPBACK, port, timeout=1.0)


def ensure_rabbitmq_running(timeout: float = 90.0) -> None:
    """Bring RabbitMQ back when a test stopped it: ``start_app`` (the
    node still runs after ``stop_app``), else start the server; waits
    (bounded) until the AMQP port answers.  AssertionError otherwise."""
    if rabbit_reachable():
        return
    deadline = time.monotonic() + timeout
    done = rabbitmqctl("start_app", timeout=timeout)
    if done.returncode != 0:
        # The node itself is down (``rabbitmqctl stop``): start it.
        subprocess.run(["rabbitmq-server", "-detached"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30, check=False)
        while time.monotonic() < deadline:
            if rabbitmqctl("await_startup", timeout=30).returncode == 0:
                break
            time.sleep(1)
    wait_until(rabbit_reachable, max(1.0, deadline - time.monotonic()),
               interval=0.2, message="RabbitMQ's AMQP port")


class RabbitVhost:
    """A RabbitMQ virtual host of its own for one test (``guest`` may use
    it), deleted with every queue and exchange in it at :meth:`delete`:
    runs never see each other's (durable) queues, and a killed run leaves
    nothing another run could consume."""

    def __init__(self, name: str | None = None,
                 user: str = "guest", password: str = "guest",
                 port: int = RABBIT_PORT):
        self.name = name or f"tc_it_{os.getpid()}_{os.urandom(4).hex()}"
        self.user, self.password, self.port = user, password, port
        self.created = False

    def create(self) -> "RabbitVhost":
        base.require_service("rabbitmq", port=self.port)
        for args in (("add_vhost", self.name),
                     ("set_permissions", "-p", self.name, self.user,
                      ".*", ".*", ".*")):
            done = rabbitmqctl(*args)
            if done.returncode != 0:
                raise AssertionError(f"rabbitmqctl {' '.join(args)} failed:"
                                     f"\n{done.stdout}\n{done.stderr}")
            self.created = True
        return self

    @property
    def url(self) -> str:
        return (f"rabbit://{self.user}:{self.password}@{LOOPBACK}:"
                f"{self.port}/{self.name}")

    def list_queues(self) -> dict[str, int]:
        """``{queue: messages}`` of this vhost (for assertions)."""
        done = rabbitmqctl("list_queues", "-q", "-p", self.name, "name",
                           "messages")
        queues = {}
        for line in done.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                queues[parts[0]] = int(parts[1])
        return queues

    def delete(self) -> None:
        if self.created:
            ensure_rabbitmq_running()
            rabbitmqctl("delete_vhost", self.name)
            self.created = False


class Deployment:
    """Several role processes sharing one config base: the same database
    (a migrated PostgreSQL database by default, dropped at cleanup), the
    same bus (a RabbitMQ vhost of their own and a unique
    ``control_exchange``) and the same ``options``, each with its own
    ``[DEFAULT] host`` (suffixed with this deployment's run id, so hosts
    are unique across runs) and its own directory, log and ports.

    ``database``: ``"postgresql"``, ``"sqlite"`` (one migrated file for
    all) or a URL; ``transport``: ``"rabbit"`` or ``"local"`` (only
    meaningful for a single ``compute-all``).
    """

    def __init__(self, options: dict[str, dict[str, Any]] | None = None,
                 database: str = "postgresql", transport: str = "rabbit",
                 register=None):
        self.run_id = os.urandom(3).hex()
        self.options = options or {}
        self.database = database
        self.transport = transport
        self.exchange = f"tc_it_{self.run_id}"
        self.directory = tempfile.mkdtemp(prefix="tc-it-deploy-")
        self.db_url: str | None = None
        self._pg_url: str | None = None
        self.vhost: RabbitVhost | None = None
        self.processes: list[TwistdProcess] = []
        self._register = register
        self._prepared = False

    def host_name(self, name: str) -> str:
        return f"{name}-{self.run_id}"

    def prepare(self) -> "Deployment":
        if self._prepared:
            return self
        self._prepared = True
        if self.transport == "rabbit":
            base.require_service("rabbitmq", port=RABBIT_PORT)
            self.vhost = RabbitVhost(
                f"tc_it_{os.getpid()}_{self.run_id}").create()
        if self.database == "postgresql":
            self._pg_url = self.db_url = base.postgresql_url()
        elif self.database == "sqlite":
            path = os.path.join(self.directory, "compute.sqlite")
            migrated_sqlite_file(path)
            self.db_url = "sqlite:///" + path
        else:
            self.db_url = self.database
        if self.database == "postgresql":
            conf = os.path.join(self.directory, "manage.conf")
            _write_ini(conf, {"DEFAULT": {"state_path": self.directory},
                              "database": {"connection": self.db_url}})
            db_sync(conf)
        return self

    def base_options(self) -> dict[str, dict[str, Any]]:
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"control_exchange": self.exchange,
                        "transport_url": (self.vhost.url if self.vhost
                                          else "local://"),
                        "periodic_fuzzy_delay": 0}}
        for section, values in self.options.items():
            sections.setdefault(section, {}).update(values)
        return sections

    def add(self, role: str, name: str, options: dict | None = None,
            apis: Iterable[str] = ("osapi_compute", "image")
            ) -> TwistdProcess:
        """A process of ``role`` for host ``name`` (suffixed), not started."""
        self.prepare()
        host = self.host_name(name)
        sections = self.base_options()
        sections["DEFAULT"]["host"] = host
        for section, values in (options or {}).items():
            sections.setdefault(section, {}).update(values)
        pattern = ROLE_READY.get(role)
        proc = TwistdProcess(
            role=role, apis=apis if role in ("compute-api", "compute-all")
            else (), options=sections, database=self.db_url,
            ready_pattern=(pattern.format(host=re.escape(host))
                           if pattern else None))
        proc.host = host
        self.processes.append(proc)
        if self._register is not None:
            self._register(proc)
        return proc

    def start(self, role: str, name: str, options: dict | None = None,
              wait: bool = True, timeout: float = START_TIMEOUT,
              **kwargs) -> TwistdProcess:
        """:meth:`add`, then start it (and wait until it is ready)."""
        proc = self.add(role, name, options, **kwargs)
        proc.start(wait=wait, timeout=timeout)
        return proc

    def start_many(self, specs: Iterable[tuple], timeout: float = 60.0
                   ) -> list[TwistdProcess]:
        """Start several processes at once (``(role, name)`` or ``(role,
        name, options)`` each), then wait until each is ready."""
        started = []
        for spec in specs:
            role, name = spec[0], spec[1]
            options = spec[2] if len(spec) > 2 else None
            proc = self.add(role, name, options)
            proc.start(wait=False)
            started.append(proc)
        deadline = time.monotonic() + timeout
        for proc in started:
            proc.wait_ready(max(1.0, deadline - time.monotonic()))
        return started

    def start_cluster(self, conductors: int = 1, schedulers: int = 1,
                      agents: int = 1,
                      agent_options: dict[int, dict] | None = None,
                      api_options: dict | None = None,
                      timeout: float = 60.0) -> TwistdProcess:
        """``conductors`` conductors (hosts ``cond1``...), ``schedulers``
        schedulers (``sched1``...), ``agents`` agents (``agent1``...;
        ``agent_options[i]`` for agent ``i``, from 1) and one compute-api
        (``api``), started together; returns the API process once every
        process is ready."""
        agent_options = agent_options or {}
        specs: list[tuple] = []
        specs += [("compute-conductor", f"cond{i}")
                  for i in range(1, conductors + 1)]
        specs += [("compute-scheduler", f"sched{i}")
                  for i in range(1, schedulers + 1)]
        specs += [("compute-agent", f"agent{i}", agent_options.get(i))
                  for i in range(1, agents + 1)]
        specs.append(("compute-api", "api", api_options))
        self.start_many(specs, timeout=timeout)
        return self.api

    def wait_services_up(self, timeout: float = 60.0) -> list[dict]:
        """Until every conductor, scheduler and agent of this deployment
        that runs is listed up by os-services; returns the services."""
        expected = {(p.host, {"compute-conductor": "nova-conductor",
                              "compute-scheduler": "nova-scheduler",
                              "compute-agent": "nova-compute"}[p.role])
                    for p in self.processes if p.running()
                    and p.role in ROLE_READY}

        def up():
            services = api_services(self.api)
            found = {(s["host"], s["binary"]) for s in services
                     if s["state"] == "up" and s["status"] == "enabled"}
            return expected <= found and services
        return wait_until(up, timeout, interval=0.3,
                          message=f"services {sorted(expected)} up")

    def wait_nodes(self, count: int, timeout: float = 60.0) -> list[dict]:
        """Until ``count`` hypervisors are reported."""
        def nodes():
            found = api_hypervisors(self.api)
            return len(found) >= count and found
        return wait_until(nodes, timeout, interval=0.3,
                          message=f"{count} hypervisors")

    def agent(self, name: str) -> TwistdProcess:
        """The agent process of host ``name`` (unsuffixed)."""
        host = self.host_name(name)
        return [p for p in self.processes if p.role == "compute-agent"
                and p.host == host][0]

    def by_role(self, role: str) -> list[TwistdProcess]:
        return [p for p in self.processes if p.role == role]

    @property
    def api(self) -> TwistdProcess:
        return self.by_role("compute-api")[0]

    def cleanup(self) -> None:
        try:
            for proc in reversed(self.processes):
                proc.cleanup()
        finally:
            try:
                if self.vhost is not None:
                    self.vhost.delete()
            finally:
                if self._pg_url is not None:
                    url, self._pg_url = self._pg_url, None
                    base.drop_postgresql(url)
                shutil.rmtree(self.directory, ignore_errors=True)


# --- the compute API of a deployment, over plain HTTP -----------------------

#: the microversion the control-plane tests speak
VERSION = "2.79"
ADMIN = "admin:admin"


def api_flavor(proc: TwistdProcess, vcpus: int = 1, ram: int = 64,
               disk: int = 1, name: str | None = None) -> str:
    """A new public flavor (as admin); returns its id."""
    response = proc.post("/v2.1/flavors", {"flavor": {
        "name": name or "it-" + os.urandom(4).hex(), "ram": ram,
        "vcpus": vcpus, "disk": disk}}, token=ADMIN)
    assert response.code == 200, response
    return response.json["flavor"]["id"]


def api_image(proc: TwistdProcess) -> str:
    """A small public image through the image API; returns its id."""
    response = proc.post("/v2/images", {
        "name": "it-" + os.urandom(4).hex(), "disk_format": "raw",
        "container_format": "bare", "visibility": "public"},
        api="image", token=ADMIN)
    assert response.code == 201, response
    image_id = response.json["id"]
    response = proc.put(f"/v2/images/{image_id}/file", api="image",
                        token=ADMIN, raw=b"\0" * 1024,
                        headers={"Content-Type": "application/octet-stream"})
    assert response.code == 204, response
    return image_id


def api_boot(proc: TwistdProcess, flavor: str, image: str, count: int = 1,
             name: str | None = None, token: str = ADMIN,
             timeout: float = 30.0) -> list[str]:
    """POST /v2.1/servers (``min_count = max_count = count``, networks
    auto, ``return_reservation_id`` when several); returns the new
    servers' ids (listed by reservation id for a multi-create)."""
    name = name or "it-" + os.urandom(4).hex()
    server = {"name": name, "flavorRef": flavor, "imageRef": image,
              "networks": "auto"}
    if count > 1:
        server.update(min_count=count, max_count=count,
                      return_reservation_id=True)
    response = proc.post("/v2.1/servers", {"server": server}, token=token,
                         version=VERSION, timeout=timeout)
    assert response.code == 202, response
    if count == 1:
        return [response.json["server"]["id"]]
    reservation = response.json["reservation_id"]
    listed = proc.get(f"/v2.1/servers?reservation_id={reservation}"
                      f"&all_tenants=1", token=ADMIN, version=VERSION,
                      timeout=timeout)
    assert listed.code == 200, listed
    ids = [s["id"] for s in listed.json["servers"]]
    assert len(ids) == count, (count, listed)
    return ids


def api_servers(proc: TwistdProcess, timeout: float = 30.0
                ) -> dict[str, dict]:
    """Every server (all projects, details, as admin) by id."""
    found: dict[str, dict] = {}
    marker = None
    while True:
        path = "/v2.1/servers/detail?all_tenants=1&limit=1000"
        if marker:
            path += f"&marker={marker}"
        response = proc.get(path, token=ADMIN, version=VERSION,
                            timeout=timeout)
        assert response.code == 200, response
        page = response.json["servers"]
        found.update((s["id"], s) for s in page)
        if len(page) < 1000:
            return found
        marker = page[-1]["id"]


def api_wait_servers(proc: TwistdProcess, ids: Iterable[str],
                     timeout: float, done=("ACTIVE", "ERROR"),
                     interval: float = 0.5) -> dict[str, dict]:
    """Poll until every server of ``ids`` has a status in ``done`` (and
    no task state); returns them by id (AssertionError naming the
    stragglers after ``timeout``)."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        try:
            servers = api_servers(proc)
        except (OSError, http.client.HTTPException):
            servers = {}
        mine = {i: servers.get(i) for i in ids}
        waiting = [i for i, s in mine.items() if s is None
                   or s["status"] not in done
                   or s.get("OS-EXT-STS:task_state")]
        if not waiting:
            return mine
        if time.monotonic() > deadline:
            sample = {i: (mine[i] or {}).get("status") for i in waiting[:5]}
            raise AssertionError(
                f"{len(waiting)} of {len(ids)} servers not in {done} after "
                f"{timeout}s, e.g. {sample}")
        time.sleep(interval)


def api_services(proc: TwistdProcess) -> list[dict]:
    response = proc.get("/v2.1/os-services", token=ADMIN, version=VERSION)
    assert response.code == 200, response
    return response.json["services"]


def api_hypervisors(proc: TwistdProcess) -> list[dict]:
    """``os-hypervisors/detail`` at 2.27 (the last microversion that
    shows vcpus and vcpus_used)."""
    response = proc.get("/v2.1/os-hypervisors/detail", token=ADMIN,
                        version="2.27")
    assert response.code == 200, response
    return response.json["hypervisors"]


def api_actions(proc: TwistdProcess, server_id: str) -> list[dict]:
    """The server's instance actions, each with its events."""
    response = proc.get(f"/v2.1/servers/{server_id}/os-instance-actions",
                        token=ADMIN, version=VERSION)
    assert response.code == 200, response
    actions = []
    for action in response.json["instanceActions"]:
        shown = proc.get(f"/v2.1/servers/{server_id}/os-instance-actions/"
                         f"{action['request_id']}", token=ADMIN,
                         version=VERSION)
        assert shown.code == 200, shown
        actions.append(shown.json["instanceAction"])
    return actions


class DeploymentTestCase(TwistdTestCase):
    """A :class:`TwistdTestCase` with :meth:`deployment`."""

    def deployment(self, **kwargs) -> Deployment:
        """A :class:`Deployment` for this test: its processes' logs are
        shown when the test fails, and everything is stopped and removed
        at cleanup."""
        deployment = Deployment(register=self._processes.append, **kwargs)
        self.addCleanup(deployment.cleanup)
        return deployment
