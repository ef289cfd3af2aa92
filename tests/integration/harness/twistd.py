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
"""

from __future__ import annotations

import atexit
import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterable

from twisted.trial.unittest import SynchronousTestCase

from tests import base
from tests.integration.harness.http import (
    Response, http_request, make_self_signed)
from tests.integration.harness.processes import (
    COMPUTE_MANAGE, LOOPBACK, TWISTD, alive, children_of, descendants_of,
    free_port, run_command, wait_until)

#: seconds a process gets to answer on its ports after start
START_TIMEOUT = 30.0
#: seconds a process gets to exit after SIGTERM before SIGKILL
STOP_TIMEOUT = 10.0


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
        # The console proxy (compute-all runs one) listens on free ports
        # too, so that processes of concurrent runs do not clash.
        self.ports["novncproxy"] = free_port()
        self.ports["serialproxy"] = free_port()
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": default,
            "api": {"auth_strategy": "noauth"},
            "database": {},
            "vnc": {
                "novncproxy_host": LOOPBACK,
                "novncproxy_port": self.ports["novncproxy"],
                "novncproxy_base_url": f"http://{LOOPBACK}:"
                f"{self.ports['novncproxy']}/vnc_auto.html"},
            "serial_console": {
                "serialproxy_host": LOOPBACK,
                "serialproxy_port": self.ports["serialproxy"],
                "base_url": f"ws://{LOOPBACK}:{self.ports['serialproxy']}/"},
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


#: what a role logs once it serves its topic (``{host}`` is filled in)
ROLE_READY = {
    "compute-conductor": r"nova-conductor serving topic conductor on host "
                         r"{host}\b",
    "compute-scheduler": r"nova-scheduler serving topic scheduler on host "
                         r"{host}\b",
    "compute-agent": r"nova-compute serving topic compute on host {host}\b",
}


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
