"""The `build_dataset` flow end to end on real clips: the store contract, bad inputs, no-op rebuilds, resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from storage import locks, manifest, shards, store
from tests.conftest import copy_clip, talkface


def card_crops(store_dir):
    return store.read_card(store_dir)["parameters"]["crops"]


def test_store_follows_the_contract(grid_store):
    table = manifest.read(grid_store / store.MANIFEST)
    assert list(table.columns) == manifest.COLUMNS
    assert len(table) == 14 and (table.status == "ok").all()
    assert set(table[table.speaker == "s1"].split) == {"train"} and set(table[table.speaker == "s2"].split) == {"test"}
    assert not table[table.speaker == "unknown"].words_timed.any() and table[table.speaker == "s1"].words_timed.all()
    row = table.set_index("clip_id").loc["s1/bbaf2n"]
    assert row.text == "bin blue at f two now" and row.n_frames == 75 and row.fps_source == 25.0
    group = shards.open_shard(grid_store, row.shard)
    n = int(row.frame_start)
    face, lm = group["face"][n : n + 75], group["landmarks"][n : n + 75]
    assert face.shape == (75, 128, 128, 3) and face.dtype == np.uint8
    assert group["mouth"].shape[1:] == (64, 64, 3) and group["transform"].shape[1:] == (2, 3)
    assert group["face_sda"].shape[1:] == (128, 96, 3) and card_crops(grid_store) == {"face": [128, 128],
                                                                                   "mouth": [64, 64],
                                                                                   "face_sda": [128, 96]}
    assert lm.dtype == np.float32 and 0 < lm.min() and lm.max() < 128
    a = int(row.mfcc_start)
    assert group["mfcc"][a : a + int(row.n_mfcc)].shape == (row.n_mfcc, 13)
    assert abs(row.n_samples / 640 - row.n_frames) <= 1
    # landmarks in the crop are the source landmarks mapped by the stored transform
    src, t = group["landmarks_src"][n], group["transform"][n]
    np.testing.assert_allclose(src @ t[:, :2].T + t[:, 2], lm[0], atol=1e-3)

    card = store.read_card(grid_store)
    assert card["counts"]["ok"] == 14 and card["validation"]["success"] and card["build"]["prefect_flow_run_id"]
    assert (grid_store / card["validation"]["data_docs"]).exists()
    assert (grid_store / "pca.npz").exists() and (grid_store / "montage.png").stat().st_size > 10_000
    assert card["validation"]["suite"] == "talkface_clips_grid"
    profile = card["profile"]
    assert profile["expected"]["vocabulary_size"] == 51 and profile["expected"]["ranges"]["n_words"] == [6, 6]
    observed = profile["observed"]
    assert observed["fps_source"] == {"25": 14} and observed["words_per_clip"] == {"min": 6, "median": 6, "max": 6}
    assert observed["texts"] == 14 and set(observed["head_pose_deg"]["median"]) == {"yaw", "pitch", "roll"}
    assert table[["head_yaw_deg", "head_pitch_deg", "head_roll_deg"]].notna().all().all()
    assert not list((grid_store / "shards").glob("*partial*"))


def test_bad_inputs_are_quarantined_and_good_clips_land(tmp_path, sample_clip):
    raw = tmp_path / "GRID raw – Müller ü"  # spaces and non-ASCII in the path
    for name in ("bbaf2n", "bbaf3s"):
        copy_clip(name, raw)
    # bad videos under valid GRID names without .align files: their words come from the name code
    (raw / "s1" / "pgwr6p.mpg").write_bytes(b"")
    (raw / "s1" / "lgas4p.mpg").write_bytes(sample_clip.read_bytes()[:30_000])
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(sample_clip), "-an", "-c:v", "copy", str(raw / "s1" / "lwik8n.mpg")],
                   check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=3:size=360x288:rate=25", "-f",
                    "lavfi", "-i", "sine=duration=3", "-c:v", "mpeg1video", "-c:a", "mp2", "-f", "mpeg",
                    str(raw / "s1" / "sbwb5a.mpg")], check=True)
    copy_clip("bbaszn", raw)
    (raw / "alignments" / "s1" / "bbaszn.align").write_text("0 23750 sil\n23750 oops bin\n")

    result = talkface("build", "--dataset", "grid", "--raw-root", raw, "--data-root", tmp_path / "data",
                      "--shard-size", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    out = Path(result.stdout.strip().splitlines()[-1])
    assert out.parent == tmp_path / "data" / "stores" / "grid"
    table = manifest.read(out / store.MANIFEST).set_index("clip_id")
    reasons = table.reason.to_dict()
    assert table.loc["s1/bbaf2n", "status"] == "ok" and table.loc["s1/bbaf3s", "status"] == "ok"
    assert reasons["s1/pgwr6p"] == "decode error: file is empty (0 bytes)"
    assert reasons["s1/lgas4p"].startswith("too short: ")  # the first 30 KB hold a handful of frames
    assert reasons["s1/lwik8n"] == "audio stream missing"
    assert reasons["s1/sbwb5a"] == "no face in 75/75 frames"
    assert table.loc["s1/sbwb5a", "text"] == "set blue with b five again" and not table.loc["s1/sbwb5a", "words_timed"]
    assert "malformed .align line 2" in reasons["s1/bbaszn"]
    assert (table.drop(["s1/bbaf2n", "s1/bbaf3s"]).status == "quarantined").all()
    assert table.loc["s1/bbaf2n", "source_path"] == "s1/bbaf2n.mpg"
    card = store.read_card(out)
    assert card["counts"]["ok"] == 2 and card["counts"]["quarantined"] == 5
    assert "2 ok, 5 quarantined" in result.stderr


def test_unchanged_rebuild_does_nothing(grid_store):
    before = {p: p.stat().st_mtime_ns for p in (grid_store / "shards").glob("*/manifest.parquet")}
    result = talkface("build", "--raw-root", Path(__file__).parents[2] / "samples" / "grid",
                      "--data-root", grid_store.parents[2], "--shard-size", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(result.stdout.strip().splitlines()[-1]) == grid_store
    assert "up to date" in result.stderr and "nothing to do" in result.stderr
    assert before == {p: p.stat().st_mtime_ns for p in (grid_store / "shards").glob("*/manifest.parquet")}


def test_killed_build_resumes_without_redoing_finished_shards(tmp_path):
    raw = tmp_path / "raw"
    names = ["bbaf2n", "bbaf3s", "bbaszn", "bbbm2p", "bbie9s", "bbir9a"]
    for name in names:
        copy_clip(name, raw)
    args = ["build", "--raw-root", raw, "--data-root", tmp_path / "data", "--shard-size", "1"]
    exe = Path(sys.executable).with_name("talkface")
    proc = subprocess.Popen([str(exe), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    shard_root = None
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list((tmp_path / "data" / "stores" / "grid").glob("*/shards"))
        if found and len(shards.completed(found[0].parent)) >= 2:
            shard_root = found[0].parent
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert shard_root is not None, "the build never completed two shards"
    assert not store.is_complete(shard_root)
    done = shards.completed(shard_root)
    assert 2 <= len(done) < len(names)
    stamps = {n: (shards.shard_path(shard_root, n) / "manifest.parquet").stat().st_mtime_ns for n in done}
    assert locks.read_holder(store.lock_path(shard_root))["pid"] == proc.pid  # it died holding the build lock

    result = talkface(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "waiting for" not in result.stderr  # a killed build's lock does not block the next one
    assert f"took over {store.lock_path(shard_root)} from the build of store grid/{shard_root.name}" in result.stderr
    assert f"resuming: {len(done)} of {len(names)} shards already complete" in result.stderr
    assert store.is_complete(shard_root) and len(shards.completed(shard_root)) == len(names)
    assert stamps == {n: (shards.shard_path(shard_root, n) / "manifest.parquet").stat().st_mtime_ns for n in done}
    assert (manifest.read(shard_root / store.MANIFEST).status == "ok").sum() == len(names)
    assert json.loads((shard_root / "card.json").read_text())["counts"]["clips"] == len(names)
