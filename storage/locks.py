"""Cross-process locks on the data root's file system: one builder per store version, one writer per shard.

The locks are OS advisory locks taken through `filelock` (`fcntl.flock` on POSIX): the kernel drops a lock when
the process holding it ends, SIGKILL included, so a killed build never blocks the next one, and a lock is taken
over the moment its holder is gone. Beside each lock file a holder file (`<lock>.holder.json`: host, pid, what for,
since when) tells a waiter whom it waits for. The holder removes it before releasing the lock, so a holder file
that the next holder finds was left by a holder that died.

What the data root's file system must provide (deploy/README.md): `flock` locks seen by every machine that builds
(a local disk; NFSv4; Lustre mounted with `flock`; GPFS; CephFS). Where a file system has no `flock` at all,
filelock falls back to soft lock files, which a dead holder leaves behind.

On an object store (an `s3://` data root) there is no `flock`; the lock is the object `<lock>` itself, a lease:
- taken by creating it only if absent (a conditional PUT, `If-None-Match: *`; one of two takers gets 412);
- renewed by its holder every `lease_s / 3` seconds by rewriting it only if it is still the version it wrote
  (`If-Match: <its ETag>`), so each renewal changes its ETag;
- taken over by a waiter that has seen the same ETag for `lease_s` seconds of its own clock (the holder stopped
  renewing: it died), again only if unchanged (`If-Match`), so of two waiters one takes it; no clocks are compared;
- released by deleting it if unchanged.
The object holds the holder's description (the holder file's fields), so waiters say whom they wait for. Sources: AWS
S3 User Guide, "Conditional writes" and "Conditional deletes".
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from storage import location

REPORT_EVERY_S = 60.0  # while waiting, a log line this often
LEASE_ENV = "TALKFACE_LOCK_LEASE_S"
LEASE_S = 60.0  # an object-store lock's lease: a holder that stops renewing it for this long is taken over


def lease_s() -> float:
    """The object-store lease in seconds: $TALKFACE_LOCK_LEASE_S, else `LEASE_S`."""
    return float(os.environ.get(LEASE_ENV) or LEASE_S)


def holder_path(lock: Path) -> Path:
    return Path(lock).with_name(Path(lock).name + ".holder.json")


def read_holder(lock: Path) -> dict | None:
    """The holder file beside `lock` ({"host", "pid", "purpose", "since"}; on an object store the lock object
    itself), or None when there is none (or it is unreadable: a holder that died while writing it)."""
    lock = location.as_path(lock)
    try:
        return json.loads((lock if location.is_remote(lock) else holder_path(lock)).read_text())
    except (OSError, ValueError):
        return None


def describe(holder: dict | None) -> str:
    """'the build of … (pid 123 on host-a, since 2026-12-01T10:00:00+00:00)', or 'an unknown holder'."""
    if not holder:
        return "an unknown holder (it has not written its holder file yet)"
    h = holder.get
    return f"{h('purpose', '?')} (pid {h('pid')} on {h('host')}, since {h('since')})"


def _holder(purpose: str) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "purpose": purpose,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _write_holder(lock: Path, purpose: str) -> None:
    doc = _holder(purpose)
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
    lock = location.as_path(lock)
    if location.is_remote(lock):
        with _hold_object(lock, purpose, log, report_every_s) as stale:
            yield stale
        return
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


class _Lease:
    """The object-store lock `lock` as its holder sees it: create, renew, take over, release (module docstring)."""

    def __init__(self, lock: Path, purpose: str):
        self.lock, self.fs, self.path = lock, lock.fs, lock.path
        self.bucket, self.key, _ = lock.fs.split_path(lock.path)
        self.doc = {**_holder(purpose), "lease_s": lease_s(), "token": uuid.uuid4().hex, "renewals": 0}
        self.etag: str | None = None

    def _body(self) -> bytes:
        return json.dumps(self.doc).encode()

    def create(self) -> bool:
        try:
            with location.writing(self.lock):
                self.etag = self.fs.pipe_file(self.path, self._body(), mode="create")["ETag"]
        except FileExistsError:
            return False
        return True

    def seen(self) -> str | None:
        """The lock object's current ETag, None when there is none."""
        try:
            return self.fs.info(self.path, refresh=True)["ETag"]
        except FileNotFoundError:
            return None

    def replace(self, etag: str) -> bool:
        """Write this holder's version over the version `etag`, only if that is still the current one."""
        try:
            self.etag = self.fs.pipe_file(self.path, self._body(), IfMatch=etag)["ETag"]
        except FileNotFoundError:
            return False
        except OSError:  # 412 Precondition Failed: another version is there
            return False
        return True

    def renew(self) -> bool:
        """Renew the lease. False when another holder has taken the lock over; a renewal that failed for another
        reason (a network error, or one that did go through but whose answer was lost) is checked by reading the
        lock back: still this holder's token, it is still held."""
        self.doc["renewals"] += 1
        if self.replace(self.etag):
            return True
        try:
            etag = self.seen()
            if etag is not None and json.loads(self.fs.cat_file(self.path)).get("token") == self.doc["token"]:
                self.etag = etag
                return True
        except (OSError, ValueError):
            pass
        return False

    def release(self) -> None:
        try:
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except OSError:  # taken over meanwhile: it is the new holder's now
            pass


@contextmanager
def _hold_object(lock: Path, purpose: str, log, report_every_s: float) -> Iterator[dict | None]:
    lease = _Lease(lock, purpose)
    stale, etag, since, reported = None, None, time.monotonic(), None
    while not lease.create():
        current = lease.seen()
        if current is None:  # released between our create and our look: try again at once
            continue
        now = time.monotonic()
        if current != etag:  # first look, or the holder renewed it: its lease starts again
            etag, since = current, now
        holder = read_holder(lock)
        if now - since >= float((holder or {}).get("lease_s") or lease_s()):
            if lease.replace(etag):
                stale = holder or {}
                break
            continue
        if reported is None:
            log.info("%s: waiting for %s, which holds %s", purpose, describe(holder), lock)
            reported = now
        elif now - reported >= report_every_s:
            log.info("%s: still waiting for %s", purpose, describe(holder))
            reported = now
        time.sleep(min(2.0, lease_s() / 4))
    if stale is not None:
        log.warning("%s: took over %s from %s, which stopped renewing it", purpose, lock, describe(stale))
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.doc["lease_s"] / 3):
            if not lease.renew():
                log.error("%s: lost %s (not renewed in time; another holder took it over)", purpose, lock)
                return

    keeper = threading.Thread(target=renew, name=f"lease {lock}", daemon=True)
    keeper.start()
    try:
        yield stale
    finally:
        stop.set()
        keeper.join()
        lease.release()
