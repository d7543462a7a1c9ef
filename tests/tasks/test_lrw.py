"""LRW adapter and build on FIXTURES in the exact official LRW layout.

LRW has no public video (BBC material, not redistributable), so the module fixture builds a tiny raw root with
ffmpeg: `lipread_mp4/<WORD>/{train,test}/<WORD>_<NNNNN>.{mp4,txt}`, each .mp4 the real LRW still frame
(`../shared/data/samples/lrw/ABOUT_00001_00001.jpg`, 256×256) looped for 29 frames at 25 fps with a slow crop drift
so the frames differ, muxed with 1.16 s of real speech (TCD-TIMIT `01M/straightcam/sa1.wav`); each .txt in the
official format ("Text:", "Conf:", "Duration: … seconds"). One clip shows the frame rotated by 20° (a rolled head)
for the near-frontal filter. These are fixtures, not LRW clips. Skipped when a clone has no shared samples.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import ffmpeg
import pandas as pd
import pytest

from storage import manifest, shards, store
from tasks import media
from tasks.datasets import lrw

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "samples"
FACE = SHARED / "lrw" / "ABOUT_00001_00001.jpg"
SPEECH = SHARED / "tcd_timit" / "01M" / "straightcam" / "sa1.wav"
# (word, split, number) → Duration seconds written in the fixture .txt
FIXTURE_CLIPS = {("ABOUT", "train", 1): 0.32, ("ABOUT", "test", 1): 0.39,
                 ("ABSOLUTELY", "train", 2): 0.56, ("ABSOLUTELY", "test", 3): 0.5}
BROKEN = ("ABOUT", "train", 7)  # its .txt has no Duration line
TILTED = ("ABSOLUTELY", "val", 4)  # the same face rolled by 20° in the image: not near-frontal


def txt(word: str, duration: float) -> str:
    """A fixture .txt in the official LRW metadata format."""
    return f"Text: {word}\nConf: 0.9\nDuration: {duration} seconds\n"


def run_ffmpeg(stream) -> None:
    stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").run(
        cmd=media.ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """Fixture LRW raw root (official layout) built with ffmpeg from the real still frame and real speech."""
    if not (FACE.is_file() and SPEECH.is_file()):
        pytest.skip(f"shared samples missing: {FACE} or {SPEECH} (a clone without ../shared)")
    root = tmp_path_factory.mktemp("lrw-fixture")
    template = root / "template.mp4"
    video = (ffmpeg.input(str(FACE), loop=1, framerate=25).video
             .filter("crop", 240, 240, "n/2", "n/2").filter("scale", 256, 256))
    audio = ffmpeg.input(str(SPEECH), ss=0.4, t=1.16).audio
    run_ffmpeg(ffmpeg.output(video, audio, str(template), vframes=29, t=1.16, vcodec="libx264", pix_fmt="yuv420p",
                             acodec="aac", ar=16000, ac=1, r=25))
    tilted = root / "tilted.mp4"
    source = ffmpeg.input(str(template))
    run_ffmpeg(ffmpeg.output(source.video.filter("rotate", "20*PI/180", fillcolor="gray"), source.audio, str(tilted),
                             vcodec="libx264", pix_fmt="yuv420p", acodec="copy"))
    for (word, split, num), duration in {**FIXTURE_CLIPS, BROKEN: None, TILTED: 0.5}.items():
        d = root / "lipread_mp4" / word / split
        d.mkdir(parents=True, exist_ok=True)
        name = f"{word}_{num:05d}"
        (d / f"{name}.mp4").write_bytes((tilted if (word, split, num) == TILTED else template).read_bytes())
        (d / f"{name}.txt").write_text(txt(word, duration) if duration else f"Text: {word}\nConf: 0.9\n")
    template.unlink()
    tilted.unlink()
    return root


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
