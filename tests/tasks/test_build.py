"""One writer per shard (tasks/build.py `build_shard`): a second writer of the same shard waits for a live one and
leaves its partial folder alone; once that writer is gone it removes the leftovers and writes the shard; a shard
another writer completed is kept, not rewritten."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

from storage import manifest, shards
from tasks import build
from tasks.datasets import discover
from tasks.preprocess import PreprocessParams
from tests.conftest import copy_clip

LIVE_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from storage import shards
    store = Path(sys.argv[1])
    with shards.hold_writer(store, "shard-00000"):
        partial = shards.shard_path(store, "shard-00000").with_name("shard-00000.zarr.partial-live")
        partial.mkdir(parents=True)
        (partial / "face").mkdir()
        print("writing", flush=True)
        sys.stdin.readline()
""")


def test_a_second_writer_waits_for_a_live_one_and_cleans_up_after_a_dead_one(tmp_path):
    copy_clip("bbaf2n", tmp_path / "raw")
    clips = discover("grid", tmp_path / "raw")
    store_dir = tmp_path / "store"
    live = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(store_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert live.stdout.readline().strip() == "writing"
    partial = store_dir / "shards" / "shard-00000.zarr.partial-live"
    result = {}
    second = threading.Thread(target=lambda: result.update(build.build_shard(
        store_dir, "shard-00000", clips, {c.clip_id: "0" * 64 for c in clips}, PreprocessParams())))
    second.start()
    time.sleep(3)
    assert second.is_alive() and partial.is_dir()  # it waits; the live writer's partial folder is untouched
    assert shards.verify(store_dir, "shard-00000") == shards.NOT_BUILT

    live.send_signal(signal.SIGKILL)  # the writer dies mid-write, leaving its partial folder behind
    live.wait(30)
    second.join(120)
    assert result == {"ok": 1, "quarantined": 0}
    assert not partial.exists() and shards.verify(store_dir, "shard-00000") is None
    assert sorted(p.name for p in (store_dir / "shards").iterdir()) == ["shard-00000.zarr"]

    marker = shards.shard_path(store_dir, "shard-00000") / shards.MARKER
    stamp = marker.stat().st_mtime_ns
    again = build.build_shard(store_dir, "shard-00000", clips, {c.clip_id: "0" * 64 for c in clips},
                              PreprocessParams())
    assert again == {"ok": 1, "quarantined": 0} and marker.stat().st_mtime_ns == stamp  # complete: kept as it is
    rows = manifest.read(shards.shard_path(store_dir, "shard-00000") / shards.PART_MANIFEST)
    assert rows.clip_id.tolist() == ["s1/bbaf2n"] and (rows.status == "ok").all()
