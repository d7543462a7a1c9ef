"""The servers the tests start as a user would: `talkface` subprocesses whose output is read line by line, free
loopback ports, and the served deployments once `talkface serve` has registered them."""
from __future__ import annotations

import asyncio
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list, env: dict) -> tuple[subprocess.Popen, "queue.Queue[str]"]:
    """A `talkface` subprocess whose output lines arrive in a queue (read by a thread, so nothing blocks)."""
    exe = Path(sys.executable).with_name("talkface")
    proc = subprocess.Popen([str(exe), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    return proc, lines


def wait_for(lines: "queue.Queue[str]", text: str, timeout: float) -> list[str]:
    """The lines printed up to the first that contains `text`; fails the test after `timeout` seconds."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        if text in seen[-1]:
            return seen
    pytest.fail(f"{text!r} not printed within {timeout} s; output:\n" + "".join(seen[-60:]))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def served_deployments(api: str, names: list[str], timeout: float = 120) -> list:
    """The deployments `names` of the Prefect server at `api`, waiting until `talkface serve` has registered them."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> list:
        async with get_client() as client:
            return [await client.read_deployment_by_name(name) for name in names]

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api}):
        while True:
            try:
                return asyncio.run(read())
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
