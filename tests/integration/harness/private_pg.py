"""A PostgreSQL server of a test's own (``initdb`` into a temporary
directory, ``pg_ctl`` on a free port, as the ``postgres`` user), for tests
that stop or restart the database: the system server on 5432 is shared
with every other test running on this machine."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from tests.integration.harness.processes import LOOPBACK, free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> str | None:
    """Why a private server cannot run here, or None."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL's initdb and pg_ctl are not installed"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user"
    if os.geteuid() != 0:
        return "a private PostgreSQL needs root (it runs as postgres)"
    return None


class PrivatePostgres:
    """``start`` / ``stop`` / ``restart`` / ``destroy``; :attr:`url` is a
    database ``tc`` on it (trust authentication, loopback only)."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="tc-pg-")
        self.data = os.path.join(self.directory, "data")
        self.log = os.path.join(self.directory, "postgres.log")
        self.port = free_port()
        user = pwd.getpwnam("postgres")
        os.chown(self.directory, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@{LOOPBACK}:{self.port}/tc"

    def _as_postgres(self, *args: str, timeout: float = 60.0
                     ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=timeout, check=False, cwd=self.directory)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited "
                                 f"{done.returncode}:\n{done.stdout}\n"
                                 f"{done.stderr}")
        return done

    def start(self) -> "PrivatePostgres":
        if not os.path.exists(self.data):
            self._as_postgres(_bin("initdb"), "-D", self.data, "-A", "trust",
                              "-U", "postgres", "--no-sync")
            self._start()
            self._as_postgres(_bin("createdb") or "createdb", "-h", LOOPBACK,
                              "-p", str(self.port), "-U", "postgres", "tc")
        else:
            self._start()
        return self

    def _start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses={LOOPBACK} "
                   f"-k {self.directory} -c fsync=off")
        self._as_postgres(_bin("pg_ctl"), "-D", self.data, "-l", self.log,
                          "-o", options, "-w", "-t", "60", "start",
                          timeout=90)

    def stop(self, mode: str = "fast") -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._as_postgres(_bin("pg_ctl"), "-D", self.data, "-m", mode,
                              "-w", "-t", "60", "stop", timeout=90)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
