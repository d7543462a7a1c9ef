"""Stores under concurrency (issue: two builds of one store at once corrupted it for good): real `talkface build`
processes started together, a build waiting for the holder of its version's lock, and resume that verifies shards
instead of trusting their folders."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import locks, manifest, shards, store
from tests.conftest import assert_same_store, copy_clip, talkface

TALKFACE = Path(sys.executable).with_name("talkface")


def _start_build(raw: Path, data_root: Path, log: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    args = ["build", "--dataset", "grid", "--raw-root", raw, "--data-root", data_root, *extra]
    return subprocess.Popen([str(TALKFACE), *map(str, args)], stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
                            env=env)


def _wait_for(path: Path, text: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while text not in path.read_text():
        assert time.time() < deadline, f"{text!r} never appeared in {path}:\n{path.read_text()[-3000:]}"
        time.sleep(0.2)


CLIPS = ("bbaf2n", "bbaf3s", "bbbm2p", "bbie9s")


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    """Four bundled GRID clips in the official layout."""
    raw = tmp_path_factory.mktemp("raw")
    for name in CLIPS:
        copy_clip(name, raw)
    return raw


@pytest.fixture(scope="module")
def single_build(raw_root, tmp_path_factory) -> Path:
    """The store one uninterrupted build of `raw_root` makes (one clip per shard), to compare against."""
    result = talkface("build", "--raw-root", raw_root, "--data-root", tmp_path_factory.mktemp("single"),
                      "--shard-size", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("first, second, embedded", [
    ((), (), True),
    (("--workers", "2"), ("--workers", "2"), False),
    ((), ("--runner", "dask", "--workers", "2"), False),
], ids=["two-local-builds-embedded-prefect", "two-process-pools", "local-and-dask"])
def test_two_builds_at_once_leave_one_store_equal_to_a_single_build(raw_root, single_build, tmp_path, first, second,
                                                                    embedded):
    """embedded: as a new user runs them, each with its own temporary Prefect server on one fresh PREFECT_HOME
    (whose database both would migrate at once); else on the session's shared Prefect server."""
    data_root = tmp_path / "data"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    env = None
    if embedded:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "ph")}
    procs = [_start_build(raw_root, data_root, logs[0], "--shard-size", "1", *first, env=env),
             _start_build(raw_root, data_root, logs[1], "--shard-size", "1", *second, env=env)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    errs = [log.read_text() for log in logs]
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err[-3000:]
    paths = {Path(out.strip().splitlines()[-1]) for out in outs}
    assert paths == {data_root / "stores" / "grid" / single_build.name}
    out = paths.pop()
    assert_same_store(out, single_build)
    assert not list((out / "shards").glob("*partial*")) and store.is_complete(out)
    # one of them built the store; the other found it complete, after waiting for the builder if it was still on
    assert sum("is up to date" in err for err in errs) == 1, errs
    for waiter, builder in ((errs[0], procs[1]), (errs[1], procs[0])):
        if "waiting for" in waiter:
            assert f"waiting for the build of store grid/{out.name}" in waiter and f"pid {builder.pid} on" in waiter


def test_a_build_waits_for_the_holder_of_its_versions_lock(raw_root, single_build, tmp_path):
    data_root = tmp_path / "data"
    out = data_root / "stores" / "grid" / single_build.name  # the version this build will make
    log = tmp_path / "waiting.log"
    with locks.hold(store.lock_path(out), "a build held by this test"):
        proc = _start_build(raw_root, data_root, log, "--shard-size", "1")
        _wait_for(log, f"waiting for a build held by this test (pid {os.getpid()} on ")
        time.sleep(2)
        assert proc.poll() is None and not (out / "shards").exists()  # nothing written while it waits
    assert proc.wait(300) == 0, log.read_text()[-3000:]
    err = log.read_text()
    assert store.is_complete(out) and "took over" not in err and f"store {out} complete" in err
    assert_same_store(out, single_build)


def test_a_shard_whose_face_array_was_deleted_is_rebuilt_by_the_next_build(raw_root, single_build, tmp_path):
    out = tmp_path / "data" / "stores" / "grid" / single_build.name
    shutil.copytree(single_build, out)
    kept = {n: (shards.shard_path(out, n) / shards.MARKER).stat().st_mtime_ns
            for n in ("shard-00000", "shard-00002", "shard-00003")}
    shutil.rmtree(shards.shard_path(out, "shard-00001") / "face")

    result = talkface("build", "--raw-root", raw_root, "--data-root", tmp_path / "data", "--shard-size", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "shard-00001 fails verification (array face is missing): it will be rebuilt" in result.stderr
    assert "card removed until they are rebuilt" in result.stderr
    assert "resuming: 3 of 4 shards already complete, building the other 1" in result.stderr
    assert store.is_complete(out) and shards.completed(out) == [f"shard-0000{i}" for i in range(4)]
    assert_same_store(out, single_build)
    assert kept == {n: (shards.shard_path(out, n) / shards.MARKER).stat().st_mtime_ns for n in kept}
    assert (manifest.read(out / store.MANIFEST).status == "ok").all()
    assert not list((out / "shards").glob("*partial*"))
