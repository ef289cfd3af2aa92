"""Test fixtures shared by the suite.

* :class:`SyncThreadPool` and :class:`SyncReactor`: the real DB layer on a
  real SQLite file, with queries run synchronously so that API tests are
  :class:`SynchronousTestCase`\\ s.
* :func:`migrated_sqlite`: a fresh, migrated SQLite file per test, copied
  from a template migrated once per run.
* :class:`APITestCase`: the real osapi_compute pipeline (from
  ``etc/twisted-compute/api-pipeline.ini``) in memory, through
  ``treq.testing.StubTreq``.
* :func:`demanded` / :func:`require_service`: a test that needs a real
  service (PostgreSQL, MariaDB, RabbitMQ, Keystone, ...) skips when the
  service is unreachable, unless ``TWISTED_COMPUTE_DEMAND`` names it (CI
  demands all), in which case it fails.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
import uuid
from typing import Any

import sqlalchemy as sa
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from twisted_compute import config
from twisted_compute.api import pipeline, wiring
from twisted_compute.db import migration
from twisted_compute.db.connector import DBConnector
from twisted_compute.db.pool import NORMAL, DBService

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ETC = os.path.join(ROOT, "etc", "twisted-compute")


# --- services the environment may demand ----------------------------------

def demanded(name: str) -> bool:
    """Whether ``TWISTED_COMPUTE_DEMAND`` (comma/space separated, or
    ``all``) names ``name``."""
    wanted = os.environ.get("TWISTED_COMPUTE_DEMAND", "").replace(",", " ")
    names = wanted.lower().split()
    return "all" in names or name.lower() in names


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str = "127.0.0.1",
                    port: int | None = None, check=None) -> None:
    """Skip (or fail, when demanded) unless the service answers."""
    ok = check() if check is not None else reachable(host, port)
    if ok:
        return
    message = f"{name} is not reachable at {host}:{port}"
    if demanded(name):
        raise AssertionError(
            f"{message}, and TWISTED_COMPUTE_DEMAND demands it")
    raise SkipTest(message)


# --- synchronous DB -------------------------------------------------------

class SyncThreadPool:
    """Runs 'threaded' work at once, in the calling thread."""

    max = 1

    def callInThreadWithCallback(self, on_result, func, *args, **kwargs):
        try:
            result = func(*args, **kwargs)
        except BaseException:
            from twisted.python.failure import Failure
            on_result(False, Failure())
        else:
            on_result(True, result)

    def start(self):
        pass

    def stop(self):
        pass


class DBStub(DBConnector):
    """The DB components in front of a stand-in: every query goes to
    ``self.read(thd, *args, **kwargs)`` (a read) or ``self.write(...)``,
    which a test defines (to hold a query back, or fail it)."""

    def __init__(self):
        self._attach_components(self, NORMAL)

    def run(self, thd, *args, readonly=False, priority=NORMAL, **kwargs):
        return (self.read if readonly else self.write)(thd, *args, **kwargs)

    def read(self, thd, *args, **kwargs):
        raise NotImplementedError

    def write(self, thd, *args, **kwargs):
        raise NotImplementedError


class SyncReactor(Clock):
    """A Clock whose callFromThread runs the call immediately."""

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)

    def getThreadPool(self):
        return SyncThreadPool()


_TEMPLATE: str | None = None


def migrated_sqlite(directory: str) -> str:
    """The URL of a fresh, migrated SQLite file in ``directory``."""
    global _TEMPLATE
    if _TEMPLATE is None or not os.path.exists(_TEMPLATE):
        template_dir = tempfile.mkdtemp(prefix="tc-template-")
        _TEMPLATE = os.path.join(template_dir, "template.sqlite")
        engine = sa.create_engine("sqlite:///" + _TEMPLATE)
        migration.upgrade(engine)
        engine.dispose()
    path = os.path.join(directory, "compute.sqlite")
    shutil.copy(_TEMPLATE, path)
    return "sqlite:///" + path


def postgresql_url() -> str:
    """A new, empty PostgreSQL database for this test run (skips, or fails
    when demanded, if PostgreSQL is unreachable)."""
    require_service("postgresql", port=5432)
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        isolation_level="AUTOCOMMIT")
    name = "tc_test_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def drop_postgresql(url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


_SHARED: dict[str, str] = {}


def shared_database_url(backend: str) -> str:
    """One migrated database of ``backend`` per test process (dropped at
    exit); tests empty its tables in setUp."""
    if backend in _SHARED:
        return _SHARED[backend]
    if backend == "postgresql":
        url = postgresql_url()
        atexit.register(drop_postgresql, url)
    elif backend == "mariadb":
        require_service("mariadb", port=3306)
        name = "tc_test_" + uuid.uuid4().hex[:12]
        admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/",
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        url = f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"

        def _drop():
            engine = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/",
                                      isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            engine.dispose()

        atexit.register(_drop)
    else:
        raise ValueError(backend)
    engine = sa.create_engine(url)
    migration.upgrade(engine)
    engine.dispose()
    _SHARED[backend] = url
    return url


def empty_tables(engine: sa.engine.Engine) -> None:
    from twisted_compute.db import models
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in
                              models.metadata.sorted_tables)
            conn.exec_driver_sql(
                f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in reversed(models.metadata.sorted_tables):
                conn.execute(table.delete())


def make_conf(state_path: str, **groups: dict[str, Any]) -> config.Config:
    """The default configuration with ``state_path`` and overrides, e.g.
    ``make_conf(d, api={"auth_strategy": "noauth"})``."""
    conf = config.load([])
    conf = conf.with_overrides(DEFAULT={"state_path": state_path})
    if groups:
        conf = conf.with_overrides(**groups)
    return conf


class DBTestCase(SynchronousTestCase):
    """A migrated database behind a synchronous DBService.

    ``backend = "sqlite"`` (a fresh file per test) by default; a subclass
    with ``backend = "postgresql"`` or ``"mariadb"`` runs the same tests on
    a shared database of that kind, emptied before each test (skipped when
    unreachable unless demanded).  :func:`on_backends` makes those
    subclasses.
    """

    backend = "sqlite"

    def setUp(self):
        super().setUp()
        self.state_path = self.mktemp()
        os.makedirs(self.state_path)
        self.reactor = SyncReactor()
        if self.backend == "sqlite":
            self.db_url = migrated_sqlite(self.state_path)
        else:
            self.db_url = shared_database_url(self.backend)
        self.db = DBService(self.db_url, self.reactor,
                            threadpool=SyncThreadPool())
        if self.backend != "sqlite":
            empty_tables(self.db.engine)
        self.db.startService()
        self.addCleanup(self.db.stopService)

    def run_db(self, thd, *args, **kwargs):
        """Run a query function and return its result (or raise)."""
        return self.successResultOf(self.db.run(thd, *args, **kwargs))


def on_backends(test_class, *backends: str, namespace=None):
    """Define ``<Name>PostgreSQL`` (etc.) subclasses of ``test_class`` in
    the caller's module, running its tests on those backends::

        on_backends(FlavorsTests, "postgresql", namespace=globals())
    """
    for backend in backends or ("postgresql",):
        name = f"{test_class.__name__}On{backend.capitalize()}"
        subclass = type(name, (test_class,), {"backend": backend,
                                              "__module__": test_class.__module__})
        if namespace is not None:
            namespace[name] = subclass
    return test_class


class Response:
    """What :meth:`APITestCase.request` returns."""

    def __init__(self, code: int, headers, body: bytes):
        self.code = code
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def __repr__(self):
        return f"<Response {self.code} {self.body[:300]!r}>"


class HTTPVerbs:
    """``get/post/put/delete`` over a class's ``request(method, path,
    ...)`` (the in-memory API tests and the integration harness)."""

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class APITestCase(HTTPVerbs, DBTestCase):
    """The osapi_compute API, in memory, on the real pipeline."""

    api_name = "osapi_compute"
    auth_strategy = "noauth"
    conf_overrides: dict[str, dict[str, Any]] = {}

    def setUp(self):
        super().setUp()
        overrides = {"api": {"auth_strategy": self.auth_strategy}}
        for group, values in self.conf_overrides.items():
            overrides.setdefault(group, {}).update(values)
        overrides.setdefault("database", {})["connection"] = self.db_url
        self.conf = make_conf(self.state_path, **overrides)
        self.services = wiring.build(self.conf, self.reactor, self.db)
        self.root = pipeline.load_api(
            os.path.join(ETC, "api-pipeline.ini"), self.api_name,
            {"conf": self.conf, "services": self.services})
        self.http = StubTreq(self.root)

    def request(self, method: str, path: str, body: Any = None,
                token: str | None = "admin:admin",
                version: str | None = None,
                headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> Response:
        """Send a request (``path`` relative to the host, e.g.
        ``/v2.1/servers``) and return the response, all synchronously."""
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
        d = self.http.request(method, "http://localhost:8774" + path,
                              headers=all_headers, data=data)
        self.http.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        return Response(response.code, response.headers, content)

    def assertFault(self, response: Response, code: int,
                    contains: str | None = None) -> dict:
        """Assert a Nova fault body with ``code``; return its inner dict."""
        from twisted_compute.api.faults import FAULT_NAMES
        self.assertEqual(response.code, code, response)
        body = response.json
        name = FAULT_NAMES.get(code, "computeFault")
        self.assertEqual(list(body), [name], body)
        self.assertEqual(body[name]["code"], code)
        if contains is not None:
            self.assertIn(contains, body[name]["message"])
        return body[name]
