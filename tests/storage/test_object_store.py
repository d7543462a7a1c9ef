"""Stores on an object store (storage/location.py, shards.py, locks.py) against moto's S3 server: a shard is visible
only through its index, created last and only once; a dead writer's keys are never a shard and are cleared; a
damaged shard is replaced; the manifest, the card and a training reader work on the bucket; the lease lock has one
holder, hands over on release and is taken over from a killed holder."""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from storage import dataset, location, locks, manifest, shards, store
from tests.storage.test_shards import _arrays, _row


@pytest.fixture
def root(s3_env, request):
    """An empty s3:// store folder of its own for each test."""
    bucket = s3_env.bucket("stores")
    return location.as_path(f"{bucket}/{request.node.name.replace('[', '-').strip(']')}/stores/grid/0123456789abcdef")


def test_a_url_is_a_upath_and_a_local_path_stays_a_path(tmp_path):
    assert location.as_path(tmp_path) == tmp_path and not location.is_remote(location.as_path(str(tmp_path)))
    assert location.normalise("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert location.normalise("data") == str(Path("data").resolve())
    with pytest.raises(ValueError, match=r"s3://bucket/p: put no credentials in the URL") as refused:
        location.normalise("s3://AKIA:hunter2@bucket/p")
    assert "hunter2" not in str(refused.value)


def test_a_shard_on_s3_is_published_by_its_index(root, s3_env):
    data = _arrays(30)
    folder = shards.write_shard(root, "shard-00000", data, [_row("s1/a", 30)])
    assert shards.verify(root, "shard-00000") is None and shards.completed(root) == ["shard-00000"]
    index = json.loads((root / "shards" / "shard-00000.json").read_text())
    assert index == {"format": shards.INDEX_FORMAT, "key": folder.name}
    assert folder.name.startswith("shard-00000.") and folder.name.endswith(".zarr")
    group = shards.open_shard(root, "shard-00000")
    for field, arr in data.items():
        np.testing.assert_array_equal(group[field][:], arr)
    rows = manifest.read(shards.shard_path(root, "shard-00000") / shards.PART_MANIFEST)
    assert rows.clip_id.tolist() == ["s1/a"]
    with pytest.raises(FileExistsError):
        shards.write_shard(root, "shard-00000", data, [_row("s1/a", 30)])


def test_a_dead_writers_keys_are_no_shard_and_are_cleared(root, s3_env):
    bucket, prefix = str(root).split("://")[1].split("/", 1)
    dead = f"{prefix}/shards/shard-00001.deadbeef.zarr"
    s3_env.client().put_object(Bucket=bucket, Key=f"{dead}/zarr.json", Body=b"{}")  # it stopped before its index
    assert shards.verify(root, "shard-00001") == shards.NOT_BUILT and shards.completed(root) == []
    shards.write_shard(root, "shard-00001", _arrays(0), [_row("s1/b", 0)])  # every clip quarantined: empty arrays
    keys = s3_env.keys(bucket, f"{prefix}/shards/")
    assert not [k for k in keys if k.startswith(dead)] and f"{prefix}/shards/shard-00001.json" in keys
    assert shards.open_shard(root, "shard-00001")["face"].shape == (0, 128, 128, 3)


def test_the_index_is_created_only_once(root, s3_env):
    index = root / "shards" / "shard-00002.json"
    assert location.publish(index, b'{"key": "first"}')
    assert not location.publish(index, b'{"key": "second"}')
    assert json.loads(index.read_text()) == {"key": "first"}


def test_a_damaged_shard_on_s3_is_replaced(root, s3_env):
    data = _arrays(4)
    first = shards.write_shard(root, "shard-00000", data, [_row("s1/a", 4)])
    face = next(k for k in root.fs.find(first.path) if "/face/c/" in k)
    root.fs.pipe_file(face, root.fs.cat_file(face)[:100])
    assert "has 100 bytes, its writer wrote" in shards.verify(root, "shard-00000")
    second = shards.write_shard(root, "shard-00000", data, [_row("s1/a", 4)])
    assert second.name != first.name and not first.exists()
    assert shards.verify(root, "shard-00000") is None
    np.testing.assert_array_equal(shards.open_shard(root, "shard-00000")["face"][:], data["face"])


def test_a_shard_whose_indexed_keys_are_gone_is_rebuilt(root, s3_env):
    first = shards.write_shard(root, "shard-00000", _arrays(2), [_row("s1/a", 2)])
    location.remove_tree(first)  # the index remains, naming nothing
    assert shards.verify(root, "shard-00000") == shards.NOT_BUILT
    second = shards.write_shard(root, "shard-00000", _arrays(2), [_row("s1/a", 2)])
    assert shards.verify(root, "shard-00000") is None and second.name != first.name


def test_manifest_card_and_clip_reader_on_s3(root, s3_env):
    data, rows = _arrays(12), [_row("s1/a", 12)]
    rows[0]["split"] = "train"
    shards.write_shard(root, "shard-00000", data, rows)
    manifest.write(rows, root / store.MANIFEST)
    with pytest.raises(store.IncompleteStoreError, match=f"{root} has no card.json"):
        store.require_complete(root)
    store.write_card(root, {"version": root.name})
    assert store.read_card(root) == {"version": root.name} and store.is_complete(root)
    assert store.latest(root.parents[2], "grid") == root
    clips = dataset.ok_clips(root, "train")
    reader = dataset.ClipReader(root)
    np.testing.assert_array_equal(reader.faces(clips.iloc[0]), data["face"])
    np.testing.assert_array_equal(reader.mfcc(clips.iloc[0]), data["mfcc"])


def test_an_unreachable_endpoint_or_bucket_fails_with_the_url_and_the_cause(s3_env, monkeypatch):
    with pytest.raises(ConnectionError, match=r"cannot reach data root s3://no-such-bucket/p at http://127.*: "):
        location.check_reachable(location.as_path("s3://no-such-bucket/p"))
    import s3fs

    from tests.servers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    s3fs.S3FileSystem.clear_instance_cache()  # a process meets one endpoint; this test meets two
    with pytest.raises(ConnectionError, match=r"cannot reach data root s3://stores/p at http://127\.0\.0\.1:\d+: ") \
            as refused:
        location.check_reachable(location.as_path("s3://stores/p"))
    assert s3_env.secret not in str(refused.value)
    s3fs.S3FileSystem.clear_instance_cache()


HOLDER = textwrap.dedent("""
    import sys
    from storage import locks
    with locks.hold(sys.argv[1], "the test holder"):
        print("held", flush=True)
        sys.stdin.readline()
""")


def _waiter(lock, purpose: str, got: list, log: logging.Logger) -> threading.Thread:
    def run():
        with locks.hold(lock, purpose, log, report_every_s=1) as stale:
            got.append((purpose, stale, time.monotonic()))
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_lease_lock_waits_for_its_holder_and_takes_over_a_killed_one(root, s3_env, monkeypatch, caplog):
    monkeypatch.setenv(locks.LEASE_ENV, "3")
    lock = root / "locks" / "shard-00000.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    log = logging.getLogger("test-object-locks")
    got: list = []
    caplog.set_level(logging.INFO, logger=log.name)
    waiter = _waiter(lock, "the waiter", got, log)
    time.sleep(5)  # longer than the lease: the live holder renews it, so the waiter keeps waiting
    assert got == [] and any("waiting for the test holder" in r.getMessage() for r in caplog.records)
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()
    waiter.join(timeout=30)
    assert got and got[0][1]["purpose"] == "the test holder"  # taken over from the killed holder
    assert 3 * 2 / 3 - 0.5 <= got[0][2] - killed <= 15  # a lease after its last renewal (every lease / 3)
    assert any("took over" in r.getMessage() for r in caplog.records)
    assert not lock.exists()  # released by the waiter at the end of its block
    second: list = []
    with locks.hold(lock, "the first"):  # a released lock is taken at once; a second taker waits for it
        other = _waiter(lock, "the second", second, log)
        time.sleep(2)
        assert second == []
    other.join(timeout=30)
    assert second and second[0][1] is None
