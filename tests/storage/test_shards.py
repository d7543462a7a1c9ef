"""Zarr shard writer and verifier: atomic appearance, immutability, sharded arrays, rows inside the shard, and a
shard counted complete only when its marker, files and array lengths agree with its manifest rows."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from storage import manifest, shards


def _arrays(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "face": rng.integers(0, 255, (n, 128, 128, 3), dtype=np.uint8),
        "mouth": rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8),
        "face_sda": rng.integers(0, 255, (n, 128, 96, 3), dtype=np.uint8),
        "landmarks": rng.uniform(0, 128, (n, 68, 2)).astype(np.float32),
        "landmarks_src": rng.uniform(0, 300, (n, 68, 2)).astype(np.float32),
        "transform": rng.normal(size=(n, 2, 3)).astype(np.float32),
        "audio": rng.integers(-3000, 3000, n * 640, dtype=np.int16),
        "mfcc": rng.normal(size=(n * 4, 13)).astype(np.float32),
    }


def _row(clip_id: str, n: int, shard: str = "shard-00000") -> dict:
    """An ok row of n frames (n·640 samples, 4n MFCC frames) at the start of `shard`; n = 0: a quarantined row."""
    row = manifest.empty_row()
    row.update(clip_id=clip_id, status="ok" if n else "quarantined", reason="" if n else "no face in 3/3 frames",
               words=[{"word": "bin", "start_frame": 1, "end_frame": 3}])
    if n:
        row.update(shard=shard, frame_start=0, n_frames=n, audio_start=0, n_samples=n * 640, mfcc_start=0,
                   n_mfcc=4 * n)
    return row


def test_write_and_read_back(tmp_path):
    data = _arrays(30)
    shards.write_shard(tmp_path, "shard-00000", data, [_row("s1/a", 30)])
    assert shards.verify(tmp_path, "shard-00000") is None
    assert shards.completed(tmp_path) == ["shard-00000"]
    group = shards.open_shard(tmp_path, "shard-00000")
    for field, arr in data.items():
        np.testing.assert_array_equal(group[field][:], arr)
    assert group["face"].shards == (50, 128, 128, 3)  # the sharding codec: one file per array
    rows = manifest.read(shards.shard_path(tmp_path, "shard-00000") / shards.PART_MANIFEST)
    assert rows.clip_id.tolist() == ["s1/a"] and rows.words[0][0]["word"] == "bin"


def test_a_shard_holds_the_crops_its_build_cut(tmp_path):
    data = _arrays(5)
    del data["mouth"], data["face_sda"]
    shards.write_shard(tmp_path, "shard-00000", data, [_row("s1/a", 5)])
    assert shards.verify(tmp_path, "shard-00000") is None
    assert sorted(shards.open_shard(tmp_path, "shard-00000").array_keys()) == sorted(data)
    del data["face"]  # the landmarks are in face-crop pixels: no shard without it
    with pytest.raises(ValueError, match="a shard holds the fields .*'face'"):
        shards.write_shard(tmp_path, "shard-00001", data, [_row("s1/b", 5, "shard-00001")])


def test_a_crop_its_marker_lists_must_be_there(tmp_path):
    shards.write_shard(tmp_path, "shard-00000", _arrays(3), [_row("s1/a", 3)])
    shutil.rmtree(shards.shard_path(tmp_path, "shard-00000") / "face_sda")
    assert shards.verify(tmp_path, "shard-00000") == "array face_sda is missing"


def test_shards_are_immutable_and_partial_writes_invisible(tmp_path):
    shards.write_shard(tmp_path, "shard-00000", _arrays(2), [_row("s1/a", 2)])
    with pytest.raises(FileExistsError):
        shards.write_shard(tmp_path, "shard-00000", _arrays(2), [_row("s1/a", 2)])
    stale = tmp_path / "shards" / "shard-00001.zarr.partial-deadbeef"
    stale.mkdir()
    assert shards.completed(tmp_path) == ["shard-00000"]  # a killed writer's leftovers are not a shard
    assert shards.verify(tmp_path, "shard-00001") == shards.NOT_BUILT
    shards.write_shard(tmp_path, "shard-00001", _arrays(0), [_row("s1/b", 0)])  # clips all quarantined: empty arrays
    assert not stale.exists() and shards.completed(tmp_path) == ["shard-00000", "shard-00001"]
    assert shards.open_shard(tmp_path, "shard-00001")["face"].shape == (0, 128, 128, 3)


def test_rows_that_disagree_with_the_arrays_are_refused(tmp_path):
    with pytest.raises(ValueError, match="face is uint8 with 3 rows; its manifest rows say uint8 with n_frames = 2"):
        shards.write_shard(tmp_path, "shard-00000", _arrays(3), [_row("s1/a", 2)])
    assert not (tmp_path / "shards" / "shard-00000.zarr").exists()


def _break_face_array(root):
    shutil.rmtree(root / "face")


def _truncate_mouth_data(root):
    data = next(p for p in (root / "mouth").rglob("*") if p.is_file() and p.name != "zarr.json")
    data.write_bytes(data.read_bytes()[:100])


def _drop_marker(root):
    (root / shards.MARKER).unlink()


def _rows_claim_more_frames(root):  # the manifest part rewritten with a longer clip than the arrays hold
    manifest.write([_row("s1/a", 5)], root / shards.PART_MANIFEST)
    marker = json.loads((root / shards.MARKER).read_text())
    marker["files"].pop(shards.PART_MANIFEST)
    (root / shards.MARKER).write_text(json.dumps(marker))


def _array_shorter_than_marker(root):  # a consistent-looking marker, but face's zarr metadata says 3 rows
    meta = json.loads((root / "face" / "zarr.json").read_text())
    meta["shape"][0] = 3
    (root / "face" / "zarr.json").write_text(json.dumps(meta))
    marker = json.loads((root / shards.MARKER).read_text())
    marker["files"]["face/zarr.json"] = (root / "face" / "zarr.json").stat().st_size
    (root / shards.MARKER).write_text(json.dumps(marker))


@pytest.mark.parametrize("damage, reason", [
    (_break_face_array, "array face is missing"),
    (_truncate_mouth_data, "has 100 bytes, its writer wrote"),
    (_drop_marker, "no readable shard.json"),
    (_rows_claim_more_frames, "its manifest rows add up to {'n_frames': 5"),
    (_array_shorter_than_marker, "array face is uint8 (3, 128, 128, 3), expected uint8 (4, 128, 128, 3)"),
])
def test_a_damaged_shard_fails_verification_and_is_replaced(tmp_path, damage, reason):
    data = _arrays(4)
    root = shards.write_shard(tmp_path, "shard-00000", data, [_row("s1/a", 4)])
    damage(root)
    why = shards.verify(tmp_path, "shard-00000")
    assert why is not None and reason in why, why
    assert shards.completed(tmp_path) == []
    shards.write_shard(tmp_path, "shard-00000", data, [_row("s1/a", 4)])  # a damaged shard is no longer immutable
    assert shards.verify(tmp_path, "shard-00000") is None
    np.testing.assert_array_equal(shards.open_shard(tmp_path, "shard-00000")["face"][:], data["face"])
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["shard-00000.zarr"]
