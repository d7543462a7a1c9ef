"""Zarr shard writer: atomic appearance, immutability, sharded arrays, rows inside the shard."""
from __future__ import annotations

import numpy as np
import pytest

from storage import manifest, shards


def _arrays(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "face": rng.integers(0, 255, (n, 128, 128, 3), dtype=np.uint8),
        "mouth": rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8),
        "landmarks": rng.uniform(0, 128, (n, 68, 2)).astype(np.float32),
        "landmarks_src": rng.uniform(0, 300, (n, 68, 2)).astype(np.float32),
        "transform": rng.normal(size=(n, 2, 3)).astype(np.float32),
        "audio": rng.integers(-3000, 3000, n * 640, dtype=np.int16),
        "mfcc": rng.normal(size=(n * 4, 13)).astype(np.float32),
    }


def _row(clip_id: str) -> dict:
    row = manifest.empty_row()
    row.update(clip_id=clip_id, status="ok", words=[{"word": "bin", "start_frame": 1, "end_frame": 3}])
    return row


def test_write_and_read_back(tmp_path):
    data = _arrays(30)
    shards.write_shard(tmp_path, "shard-00000", data, [_row("s1/a")])
    assert shards.completed(tmp_path) == ["shard-00000"]
    group = shards.open_shard(tmp_path, "shard-00000")
    for field, arr in data.items():
        np.testing.assert_array_equal(group[field][:], arr)
    assert group["face"].shards == (50, 128, 128, 3)  # the sharding codec: one file per array
    rows = manifest.read(shards.shard_path(tmp_path, "shard-00000") / shards.PART_MANIFEST)
    assert rows.clip_id.tolist() == ["s1/a"] and rows.words[0][0]["word"] == "bin"


def test_shards_are_immutable_and_partial_writes_invisible(tmp_path):
    shards.write_shard(tmp_path, "shard-00000", _arrays(2), [_row("s1/a")])
    with pytest.raises(FileExistsError):
        shards.write_shard(tmp_path, "shard-00000", _arrays(2), [_row("s1/a")])
    stale = tmp_path / "shards" / "shard-00001.zarr.partial-deadbeef"
    stale.mkdir()
    assert shards.completed(tmp_path) == ["shard-00000"]  # a killed writer's leftovers are not a shard
    shards.write_shard(tmp_path, "shard-00001", _arrays(0), [_row("s1/b")])  # clips all quarantined: empty arrays
    assert not stale.exists() and shards.completed(tmp_path) == ["shard-00000", "shard-00001"]
    assert shards.open_shard(tmp_path, "shard-00001")["face"].shape == (0, 128, 128, 3)
