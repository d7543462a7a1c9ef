"""LRW adapter and build on FIXTURES in the exact official LRW layout: the session fixture `lrw_raw`
(tests/conftest.py) builds a tiny raw root with ffmpeg from the real LRW still frame and real speech, in the official
`lipread_mp4/<WORD>/{train,test}/<WORD>_<NNNNN>.{mp4,txt}` layout (29 frames at 25 fps, .txt in the official format;
one clip rolled by 20° for the near-frontal filter). These are fixtures, not LRW clips. Skipped when a clone has no
shared samples.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from storage import manifest, shards, store
from tasks.datasets import lrw
from tests.conftest import LRW_BROKEN as BROKEN, LRW_CLIPS as FIXTURE_CLIPS, LRW_TILTED as TILTED, lrw_txt as txt


@pytest.fixture(scope="module")
def raw(lrw_raw) -> Path:
    """The session's fixture LRW raw root (`tests.conftest.lrw_raw`); a test that changes it copies it first."""
    return lrw_raw


def test_word_span_is_centred():
    assert lrw.word_span(0.32) == (10, 18)  # 8 frames: 14.5 − 4 = 10.5 → 10
    assert lrw.word_span(0.36) == (10, 19)  # 9 frames, centre exactly 14.5
    assert lrw.word_span(1.16) == (0, 29)
    assert lrw.word_span(5.0) == (0, 29) and lrw.word_span(0.001) == (14, 15)


def test_discover_the_fixture_layout(raw):
    clips = {c.clip_id: c for c in lrw.discover(raw)}
    assert sorted(clips) == list(clips) == sorted(
        f"{s}/{w}_{n:05d}" for w, s, n in [*FIXTURE_CLIPS, BROKEN, TILTED])
    for (word, split, num), duration in FIXTURE_CLIPS.items():
        c = clips[f"{split}/{word}_{num:05d}"]
        assert c.label_error is None and c.dataset == "lrw" and c.split == split and c.speaker == c.clip_id
        assert c.text == word and c.words_timed and c.extras == {"word": word}
        assert c.words == (lrw.Word(word, *lrw.word_span(duration)),)
        assert c.source_path == f"lipread_mp4/{word}/{split}/{word}_{num:05d}.mp4" and c.path.exists()
    assert [w.end_frame - w.start_frame for w in clips["train/ABSOLUTELY_00002"].words] == [14]
    assert "has no 'Duration: <seconds> seconds' line" in clips["train/ABOUT_00007"].label_error
    assert len(lrw.label_files(raw)) == 6


def test_label_errors(raw, tmp_path):
    d = tmp_path / "lipread_mp4" / "ABOUT" / "val"
    d.mkdir(parents=True)
    src = raw / "lipread_mp4" / "ABOUT" / "train" / "ABOUT_00001.mp4"
    for name in ("ABOUT_00001", "ABOUT_00002", "ABOUT_00003", "ABOUT-4"):
        (d / f"{name}.mp4").write_bytes(src.read_bytes())
    (d / "ABOUT_00002.txt").write_text(txt("ABSENT", 0.3))
    (d / "ABOUT_00003.txt").write_text(txt("ABOUT", 2.5))
    by_id = {c.clip_id: c for c in lrw.discover(tmp_path)}
    assert "ABOUT_00001.txt not found" in by_id["val/ABOUT_00001"].label_error
    assert "is not the folder's word 'ABOUT'" in by_id["val/ABOUT_00002"].label_error
    assert "outside (0, 1.16] s" in by_id["val/ABOUT_00003"].label_error
    assert "is not ABOUT_<NNNNN>.mp4" in by_id["val/ABOUT-4"].label_error
    assert all(c.split == "val" and c.extras == {"word": "ABOUT"} for c in by_id.values())
    with pytest.raises(FileNotFoundError, match="no lipread_mp4/"):
        lrw.discover(tmp_path / "nowhere")


def test_build_the_fixture_clips_near_frontal(raw, tmp_path):
    """The build as Vougioukas et al. use LRW: near-frontal clips only (yaw, pitch, roll under 10°); with an empty
    and a truncated video beside them (valid .txt), quarantined like GRID's."""
    from flows.build_dataset import BuildParams, build_dataset

    raw = Path(shutil.copytree(raw, tmp_path / "raw"))
    val = raw / "lipread_mp4" / "ABOUT" / "val"
    val.mkdir()
    good = (raw / "lipread_mp4" / "ABOUT" / "train" / "ABOUT_00001.mp4").read_bytes()
    (val / "ABOUT_00009.mp4").write_bytes(b"")
    (val / "ABOUT_00010.mp4").write_bytes(good[: len(good) // 3])
    for n in (9, 10):
        (val / f"ABOUT_{n:05d}.txt").write_text(txt("ABOUT", 0.3))
    out = Path(build_dataset(BuildParams(dataset="lrw", raw_root=raw, data_root=tmp_path / "data", shard_size=4,
                                         max_head_pose_deg=10)))
    assert out.parent.name == "lrw"
    table = manifest.read(out / store.MANIFEST).set_index("clip_id")
    assert list(table.reset_index().columns) == manifest.COLUMNS
    bad = table.loc["train/ABOUT_00007"]
    assert bad.status == "quarantined" and "has no 'Duration: <seconds> seconds' line" in bad.reason
    for (word, split, num), duration in FIXTURE_CLIPS.items():
        row = table.loc[f"{split}/{word}_{num:05d}"]
        assert row.status == "ok", f"{row.name}: {row.reason}"
        assert row.split == split and row.word == word and row.text == word and row.words_timed
        assert [(w["word"], w["start_frame"], w["end_frame"]) for w in row.words] == [(word, *lrw.word_span(duration))]
        assert row.n_frames == 29 and abs(row.n_samples / 640 - 29) <= 1 and row.faces_missing == 0
        group = shards.open_shard(out, row.shard)
        n = int(row.frame_start)
        assert group["face"][n : n + 29].shape == (29, 128, 128, 3)
        assert max(row.head_yaw_deg, row.head_pitch_deg, row.head_roll_deg) < 10
    tilted = table.loc["val/ABSOLUTELY_00004"]
    assert tilted.status == "quarantined" and tilted.reason.startswith("not near-frontal: head pose up to")
    assert tilted.head_roll_deg == pytest.approx(20, abs=2.5) and pd.isna(tilted.shard)  # recorded, not stored
    assert table.loc["val/ABOUT_00009", "reason"] == "decode error: file is empty (0 bytes)"
    truncated = table.loc["val/ABOUT_00010"]
    assert truncated.status == "quarantined" and truncated.reason.startswith(("decode error", "too short"))
    assert table.emotion.isna().all()
    card = store.read_card(out)
    assert card["counts"]["ok"] == 4 and card["counts"]["quarantined"] == 4 and card["validation"]["success"]
    assert card["validation"]["suite"] == "talkface_clips_lrw"
    assert card["counts"]["speakers"] == {"test": 2, "train": 3, "val": 3}  # counted: LRW has no speaker ids
    assert card["profile"]["observed"]["top_words"] == {"ABOUT": 2, "ABSOLUTELY": 2}
