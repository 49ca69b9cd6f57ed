"""A throwaway PostgreSQL server for the tests: a real cluster in a temporary folder.

The PostgreSQL backend (issue 16) must be tested against the real engine, not an
imitation, and CI must really run it. This starts Debian's (or any installed)
PostgreSQL binaries: `initdb` a fresh cluster in a temporary folder, `pg_ctl start` it
on a free port of 127.0.0.1 with its socket inside that folder, and removes it all
again on `stop()`. Nothing is installed system-wide and no service is touched, so it
runs the same on a developer's machine and on a fresh CI machine (`.ci/run` installs
the `postgresql` package when the binaries are missing).

Why this and not a pip-installable server: Debian's package is the PostgreSQL people
deploy, its `postgresql-contrib` part ships `pg_trgm`, and it starts in well under a
second; the pip-installed servers are repackaged binaries with fewer extensions.

PostgreSQL refuses to run as root. When the tests run as root (CI machines do), the
cluster belongs to the unprivileged `postgres` user the package creates (or `nobody`),
and the commands run as that user. `fsync=off`: a test cluster need not survive a power
cut, and it makes the suite's many small commits cheap.

`COMPANION_TEST_DATABASE_URL` names an existing server to use instead (a database the
tests may fill and empty). `find_binaries()` says why there is no server when there is
none, so a test can skip with that line, or fail where PostgreSQL is required.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

ADMIN = "companion"  # the cluster's superuser, trusted on 127.0.0.1 only


class NoPostgres(RuntimeError):
    """No PostgreSQL to start here; the message says why and how to get one."""


def find_binaries() -> Path:
    """The folder holding `initdb` and `pg_ctl`, newest installed version first."""
    candidates = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    # Debian and Ubuntu keep the server binaries off PATH, one folder per major version.
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates += [Path(p) for p in versions]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise NoPostgres("no PostgreSQL server binaries (initdb, pg_ctl) found: install them "
                     "(Debian: apt-get install postgresql) or set COMPANION_TEST_DATABASE_URL")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_user() -> str | None:
    """The unprivileged account to run the server as when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise NoPostgres("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


@dataclass
class PostgresServer:
    """A server the tests may use: one started here (`start()`), or an existing one
    (`existing(url)`, which `stop()` leaves alone). `url` is its maintenance database."""

    url: str
    folder: Path | None = None
    binaries: Path | None = None
    user: str | None = None

    @classmethod
    def existing(cls, url: str) -> "PostgresServer":
        return cls(url=url)

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database on this server (its URL), dropped again afterwards."""
        import psycopg

        name = f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{self.url.rsplit('/', 1)[0]}/{name}"  # the same server and credentials, that database
        finally:
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @classmethod
    def start(cls) -> "PostgresServer":
        binaries = find_binaries()
        user = _server_user()
        folder = Path(tempfile.mkdtemp(prefix="companion-pg-"))
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(folder, account.pw_uid, account.pw_gid)
        port = _free_port()
        server = cls(url=f"postgresql://{ADMIN}@127.0.0.1:{port}/postgres", folder=folder, binaries=binaries,
                     user=user)
        try:
            server._run("initdb", "-D", str(folder / "data"), "-U", ADMIN, "--auth=trust", "-E", "UTF8",
                        "--locale=C.UTF-8", "--no-sync")
            options = (f"-k {folder} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            server._run("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "server.log"), "-o", options,
                        "-w", "-t", "60", "start")
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, program: str, *arguments: str) -> None:
        result = subprocess.run([str(self.binaries / program), *arguments], capture_output=True, text=True,
                                user=self.user, cwd=self.folder, timeout=120)
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise NoPostgres(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]} {tail}")

    def stop(self) -> None:
        if self.folder is None:  # not ours
            return
        if (self.folder / "data" / "postmaster.pid").exists():
            subprocess.run([str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate",
                            "-w", "stop"], capture_output=True, user=self.user, cwd=self.folder, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)
