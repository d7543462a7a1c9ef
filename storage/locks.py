"""Cross-process locks on the data root's file system: one builder per store version, one writer per shard.

The locks are OS advisory locks taken through `filelock` (`fcntl.flock` on POSIX): the kernel drops a lock when
the process holding it ends, SIGKILL included, so a killed build never blocks the next one, and a lock is taken
over the moment its holder is gone. Beside each lock file a holder file (`<lock>.holder.json`: host, pid, what for,
since when) tells a waiter whom it waits for. The holder removes it before releasing the lock, so a holder file
that the next holder finds was left by a holder that died.

What the data root's file system must provide (deploy/README.md): `flock` locks seen by every machine that builds
(a local disk; NFSv4; Lustre mounted with `flock`; GPFS; CephFS). Where a file system has no `flock` at all,
filelock falls back to soft lock files, which a dead holder leaves behind.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

REPORT_EVERY_S = 60.0  # while waiting, a log line this often


def holder_path(lock: Path) -> Path:
    return Path(lock).with_name(Path(lock).name + ".holder.json")


def read_holder(lock: Path) -> dict | None:
    """The holder file beside `lock` ({"host", "pid", "purpose", "since"}), or None when there is none (or it is
    unreadable: a holder that died while writing it)."""
    try:
        return json.loads(holder_path(lock).read_text())
    except (OSError, ValueError):
        return None


def describe(holder: dict | None) -> str:
    """'the build of … (pid 123 on host-a, since 2026-12-01T10:00:00+00:00)', or 'an unknown holder'."""
    if not holder:
        return "an unknown holder (it has not written its holder file yet)"
    h = holder.get
    return f"{h('purpose', '?')} (pid {h('pid')} on {h('host')}, since {h('since')})"


def _write_holder(lock: Path, purpose: str) -> None:
    doc = {"host": socket.gethostname(), "pid": os.getpid(), "purpose": purpose,
           "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    tmp = holder_path(lock).with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    tmp.replace(holder_path(lock))


@contextmanager
def hold(lock: Path, purpose: str, log: logging.Logger | logging.LoggerAdapter | None = None,
         report_every_s: float = REPORT_EVERY_S) -> Iterator[dict | None]:
    """Hold the exclusive lock `lock` (a file path; its folder is created) for the block, waiting as long as it
    takes. `purpose` says who holds it ("the build of store grid/0123…"), for the log lines of whoever waits.

    Yields the holder file a dead holder left (its dict: the lock was taken over from it), or None. Logs, at INFO,
    whom it waits for when the lock is taken and, every `report_every_s` seconds, that it still waits; and at
    WARNING a takeover. Raises OSError when the lock file cannot be created.
    """
    log = log or logging.getLogger(__name__)
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    flock = FileLock(lock, thread_local=False)
    try:
        flock.acquire(blocking=False)
    except Timeout:
        log.info("%s: waiting for %s, which holds %s", purpose, describe(read_holder(lock)), lock)
        while True:
            try:
                flock.acquire(timeout=report_every_s)
                break
            except Timeout:
                log.info("%s: still waiting for %s", purpose, describe(read_holder(lock)))
    try:
        stale = read_holder(lock)
        if stale:
            log.warning("%s: took over %s from %s, which stopped without releasing it", purpose, lock,
                        describe(stale))
        _write_holder(lock, purpose)
        yield stale
    finally:
        holder_path(lock).unlink(missing_ok=True)
        flock.release()
