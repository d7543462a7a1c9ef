"""A real PostgreSQL server for the tests of the PostgreSQL profile: Debian's `postgresql` package (`make test`
installs it when missing), a new cluster in a temporary directory, listening on a free loopback port, with the role
`talkface` (password authentication over TCP) owning talkface's two databases.

Run as root (CI), the server runs as the package's `postgres` user, since PostgreSQL refuses to run as root.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from storage import database as pg
from tests.servers import free_port


def bindir() -> Path:
    """The newest installed server's binaries (Debian keeps them off PATH, in /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    pytest.fail("PostgreSQL's server is not installed: `make test` installs Debian's postgresql package")


@dataclasses.dataclass(frozen=True)
class Server:
    """A running test server: `url` is what a user passes to `talkface ui --database` (no password in it)."""
    port: int
    password: str
    socket_dir: Path
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql://talkface@127.0.0.1:{self.port}"

    def query(self, database: str, sql: str) -> list[tuple]:
        """Rows of `sql` in `database` (none for a command), as the superuser over the Unix socket, autocommitted
        (CREATE DATABASE cannot run inside a transaction block)."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname=database,
                             autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def dump(self, database: str) -> str:
        """The whole of `database` as SQL text (pg_dump), to search for what it must not hold."""
        return subprocess.run([str(self.bindir / "pg_dump"), "-h", str(self.socket_dir), "-p", str(self.port),
                               "-U", "postgres", "-d", database], check=True, capture_output=True, text=True).stdout


def _as_server_user(cmd: list[str]) -> None:
    """Run one of the server's programs (as `postgres` under root); fails the test with its output."""
    done = subprocess.run(["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd,
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")


@contextmanager
def postgres_server() -> Iterator[Server]:
    """Start a server, create the role and talkface's databases, yield it, stop it and remove its cluster."""
    binaries = bindir()
    root = Path(tempfile.mkdtemp(prefix="talkface-pg-"))  # under /tmp, reachable by the postgres user
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port, password = root / "data", free_port(), "tf-" + secrets.token_hex(12)
    server = Server(port, password, root, binaries)
    try:
        _as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "-E", "UTF8"])
        _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-o", f"-p {port} -k {root} -c "
                         "listen_addresses=127.0.0.1", "-l", str(root / "log"), "-w", "-t", "60", "start"])
        server.query("postgres", f"CREATE ROLE talkface LOGIN PASSWORD '{password}'")
        for database in (pg.PREFECT_DATABASE, pg.MLFLOW_DATABASE):
            server.query("postgres", f"CREATE DATABASE {database} OWNER talkface")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)

