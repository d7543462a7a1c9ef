"""The embedded default (DESIGN "Set-up and entry points"): with no PREFECT_API_URL, each command runs its flows on a
temporary Prefect server of its own, on the SQLite database under PREFECT_HOME.

Two commands started at the same moment on a fresh (or newly upgraded) database would both run its migrations and
one fails ("duplicate column name"), which is what a scheduled rebuild and a one-click benchmark do when they start
together. So a command starts its temporary server itself, before its first flow, under a file lock beside the
database: the first migrates it, the next finds it up to date. The flow then uses that server (Prefect keeps one
temporary server per process). Migrating a fresh database takes about 20 s on two busy cores, Prefect's default
start-up limit, so the limit here is `STARTUP_TIMEOUT_S`.
"""
from __future__ import annotations

from filelock import FileLock

STARTUP_TIMEOUT_S = 180


def start_temporary_prefect() -> None:
    """Start this process's temporary Prefect server, one process at a time per PREFECT_HOME; nothing when
    PREFECT_API_URL names a server. Raises RuntimeError (Prefect's) when the server does not come up."""
    from prefect.settings import (PREFECT_API_URL, PREFECT_HOME, PREFECT_SERVER_EPHEMERAL_ENABLED,
                                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    home = PREFECT_HOME.value()
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(home / "talkface-server-start.lock", thread_local=False):
        SubprocessASGIServer().start(timeout=max(STARTUP_TIMEOUT_S,
                                                 PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
