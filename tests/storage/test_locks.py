"""Cross-process locks (storage/locks.py) between real processes: a waiter says whom it waits for and gets the lock
when its holder releases it; a killed holder's lock is taken over at once; other locks are not held up."""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time

from storage import locks

HOLDER = textwrap.dedent("""
    import sys
    from storage import locks
    with locks.hold(sys.argv[1], "the test holder"):
        print("held", flush=True)
        sys.stdin.readline()
""")


def _start_holder(lock) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _logger() -> tuple[logging.Logger, list[str]]:
    """A fresh logger and the list of the messages it receives."""
    log, handler = logging.getLogger(f"test-locks-{time.monotonic_ns()}"), _Lines()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log, handler.lines


def test_a_waiter_names_the_holder_and_gets_the_lock_when_it_is_released(tmp_path):
    lock = tmp_path / "locks" / "build.lock"
    holder = _start_holder(lock)
    log, lines = _logger()
    got, stale = threading.Event(), []

    def wait_for_it():
        with locks.hold(lock, "the second build", log, report_every_s=0.5) as previous:
            stale.append(previous)
            got.set()

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    with locks.hold(tmp_path / "locks" / "other-version.lock", "another version's build"):
        pass  # a different lock is free meanwhile
    time.sleep(1.5)
    assert not got.is_set()
    assert f"the second build: waiting for the test holder (pid {holder.pid} on " in lines[0]
    assert any(line.startswith("the second build: still waiting for the test holder") for line in lines[1:])
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(30) == 0
    waiter.join(30)
    assert got.is_set() and stale == [None]  # released cleanly: no takeover
    assert not locks.holder_path(lock).exists()


def test_a_killed_holders_lock_is_taken_over_at_once(tmp_path):
    lock = tmp_path / "build.lock"
    holder = _start_holder(lock)
    assert locks.read_holder(lock)["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    log, lines = _logger()
    t0 = time.monotonic()
    with locks.hold(lock, "the next build", log) as stale:
        assert time.monotonic() - t0 < 1.0
        assert stale["pid"] == holder.pid and stale["purpose"] == "the test holder"
        assert locks.read_holder(lock)["purpose"] == "the next build"
    assert not any("waiting" in line for line in lines)
    assert lines == [f"the next build: took over {lock} from {locks.describe(stale)}, which stopped without "
                     "releasing it"]
