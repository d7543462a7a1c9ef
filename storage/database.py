"""The PostgreSQL profile (deploy/README.md "PostgreSQL"): one PostgreSQL server holds Prefect's database
(`talkface_prefect`) and MLflow's backend store (`talkface_mlflow`), reached as one role.

The URL names the server and the role, never the password: both servers' drivers (libpq for MLflow through psycopg 3,
asyncpg for Prefect) read it themselves from `PGPASSWORD` or from the password file (`PGPASSFILE`, default
`~/.pgpass`), which libpq ignores unless its mode is 0600. So the password is in no command line, no flow parameter,
no log line and no database record of either server. Source: PostgreSQL 15 documentation, 34.1.1 "Connection
Strings", 34.15 "The Password File", 34.16 "Environment Variables"; asyncpg `connect()` (password, passfile).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import URL, make_url

PREFECT_DATABASE = "talkface_prefect"
MLFLOW_DATABASE = "talkface_mlflow"


def server_url(url: str) -> URL:
    """The server part of a PostgreSQL URL, `postgresql://ROLE@HOST[:PORT]` (a database name, if given, is dropped:
    the two databases have fixed names). Raises ValueError for another scheme or a URL that holds a password."""
    try:
        parsed = make_url(url)
    except Exception as error:  # sqlalchemy.exc.ArgumentError
        raise ValueError(f"not a database URL: {url!r} ({error})") from None
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"--database takes a postgresql:// URL, not {parsed.drivername}://")
    if parsed.password is not None:
        raise ValueError(f"{redacted(url)}: put no password in the URL (it would show in process lists and logs); "
                         "export PGPASSWORD or write it to ~/.pgpass with mode 600")
    if not parsed.username or not parsed.host:
        raise ValueError(f"{redacted(url)}: name the role and the host, e.g. postgresql://talkface@127.0.0.1:5432")
    return parsed.set(drivername="postgresql", database=None)


def redacted(url: str | URL) -> str:
    """`url` with its password shown as ***, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def prefect_url(server: URL) -> str:
    """Prefect's `PREFECT_SERVER_DATABASE_CONNECTION_URL`: asyncpg on `talkface_prefect`."""
    return server.set(drivername="postgresql+asyncpg", database=PREFECT_DATABASE).render_as_string()


def mlflow_url(server: URL) -> str:
    """MLflow's `--backend-store-uri`: psycopg 3 (libpq) on `talkface_mlflow`."""
    return server.set(drivername="postgresql+psycopg", database=MLFLOW_DATABASE).render_as_string()


def check_password_file() -> None:
    """Raises ValueError when the password file (PGPASSFILE, default ~/.pgpass) exists but others may read it:
    libpq then ignores it, and the server's refusal ("no password supplied") would not say why."""
    path = Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")
    if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ValueError(f"{path} has mode {stat.S_IMODE(path.stat().st_mode):o}: libpq ignores a password file that "
                         f"others can read; run chmod 600 {path}")


def check_reachable(server: URL, timeout_s: int = 10) -> None:
    """Connect once to each of the two databases. Raises ValueError for an open password file
    (`check_password_file`), ConnectionError naming the URL (without a password) and the driver's cause: server
    down, role or password refused, database missing."""
    import psycopg

    check_password_file()

    for database in (PREFECT_DATABASE, MLFLOW_DATABASE):
        url = server.set(database=database)
        try:
            psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=database,
                            connect_timeout=timeout_s).close()
        except psycopg.Error as error:
            cause = " ".join(str(error).split())
            raise ConnectionError(f"cannot reach database {redacted(url)}: {cause}") from None
