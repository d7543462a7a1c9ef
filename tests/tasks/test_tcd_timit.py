"""TCD-TIMIT adapter and build on FIXTURES: TCD-TIMIT video is not public (SOURCES.md), so the module fixture
builds a tiny raw root in the layout of issue 5 with ffmpeg from real material only: a real face (the LRW still
frame `../shared/data/samples/lrw/ABOUT_00001_00001.jpg`) looped at 29.97 fps for the length of a real TCD-TIMIT
speech recording (`../shared/data/samples/tcd_timit/<ID>/straightcam/sa*.wav`, 48 kHz) and muxed with it, with
the samples' transcripts copied beside the videos. Skipped when a clone has no shared samples.

Fixture clips (video: the LRW face; audio: the TCD-TIMIT recording named):
    volunteers/01M/straightcam/sa1.mp4 + sa1.transcript.txt        01M's sa1                 (train or val)
    volunteers/01M/straightcam/sa2.mp4 + sa2.transcript.txt        01M's sa2
    volunteers/08F/straightcam/sa1.mp4 + sa1.transcript.txt        43F's sa1, standing in for DESIGN test speaker 08F
    lipspeakers/Lipspkr1/straightcam/sa2.mp4 + sa2.transcript.txt  43F's sa2, standing in for a lipspeaker
    volunteers/01M/straightcam/si1445.mp4 (no transcript)          01M's sa1: quarantined
"""
from __future__ import annotations

import shutil
import wave
from pathlib import Path

import ffmpeg
import pytest

from storage import manifest, store
from tasks import media
from tasks.datasets import tcd_timit
from tests.conftest import assert_resampled_from_29_97_fps

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "samples"
AUDIO, FACE = SHARED / "tcd_timit", SHARED / "lrw" / "ABOUT_00001_00001.jpg"
SA1 = "She had your dark suit in greasy wash water all year."
SA2 = "Don't ask me to carry an oily rag like that."
# fixture clip id → (speech sample <ID>/<sentence>, transcript copied beside it or None)
FIXTURES = {
    "volunteers/01M/sa1": ("01M/sa1", True),
    "volunteers/01M/sa2": ("01M/sa2", True),
    "volunteers/08F/sa1": ("43F/sa1", True),
    "lipspeakers/Lipspkr1/sa2": ("43F/sa2", True),
    "volunteers/01M/si1445": ("01M/sa1", False),
}
OK = [c for c, (_, t) in FIXTURES.items() if t]


def run_ffmpeg(stream) -> None:
    stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").run(
        cmd=media.ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)


def speech_seconds(wav: Path) -> float:
    """Length of a wav (the video is cut to it: -shortest with a looped image overshoots by a varying amount)."""
    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """The fixture raw root (see the module docstring)."""
    if not (AUDIO / "01M" / "straightcam" / "sa1.wav").is_file() or not FACE.is_file():
        pytest.skip(f"shared TCD-TIMIT/LRW samples missing under {SHARED} (a clone without ../shared)")
    root = tmp_path_factory.mktemp("TCD-TIMIT raw")
    for clip_id, (sample, with_transcript) in FIXTURES.items():
        group, person, sentence = clip_id.split("/")
        speaker_dir, sample_sentence = sample.split("/")
        folder = root / group / person / tcd_timit.CAMERA
        folder.mkdir(parents=True, exist_ok=True)
        wav = AUDIO / speaker_dir / "straightcam" / f"{sample_sentence}.wav"
        face = ffmpeg.input(str(FACE), loop=1, framerate="30000/1001")
        speech = ffmpeg.input(str(wav))
        run_ffmpeg(ffmpeg.output(face.video, speech.audio, str(folder / f"{sentence}.mp4"), vcodec="libx264",
                                 pix_fmt="yuv420p", acodec="aac", ar=48000, t=speech_seconds(wav)))
        if with_transcript:
            shutil.copy(wav.with_name(f"{sample_sentence}.transcript.txt"), folder / f"{sentence}.transcript.txt")
    return root


def test_discover_the_fixture_tree(raw):
    clips = {c.clip_id: c for c in tcd_timit.discover(raw)}
    assert sorted(clips) == sorted(FIXTURES)
    assert {c: clips[c].speaker for c in clips} == {
        "volunteers/01M/sa1": "01M", "volunteers/01M/sa2": "01M", "volunteers/01M/si1445": "01M",
        "volunteers/08F/sa1": "08F", "lipspeakers/Lipspkr1/sa2": "lipspeaker-Lipspkr1"}
    assert clips["volunteers/08F/sa1"].split == "test" and clips["lipspeakers/Lipspkr1/sa2"].split == "train"
    assert clips["volunteers/01M/sa1"].split in {"train", "val"}
    assert {clips[c].split for c in clips if c.startswith("volunteers/01M/")} == {clips["volunteers/01M/sa1"].split}
    for c in OK:
        clip = clips[c]
        assert clip.label_error is None and clip.dataset == "tcd_timit" and not clip.words_timed
        assert clip.text == (SA1 if c.endswith("sa1") else SA2) and [w.word for w in clip.words] == clip.text.split()
        assert clip.source_path == f"{c.rsplit('/', 1)[0]}/straightcam/{c.rsplit('/', 1)[1]}.mp4" and clip.path.exists()
    bad = clips["volunteers/01M/si1445"]
    assert bad.text == "" and "no transcript (si1445.transcript.txt or si1445.txt) beside the video" in bad.label_error
    assert [p.relative_to(raw).as_posix() for p in tcd_timit.label_files(raw)] == [
        "lipspeakers/Lipspkr1/straightcam/sa2.transcript.txt", "volunteers/01M/straightcam/sa1.transcript.txt",
        "volunteers/01M/straightcam/sa2.transcript.txt", "volunteers/08F/straightcam/sa1.transcript.txt"]


def test_the_official_clips_level_is_read_too(raw, tmp_path):
    """The official download puts a `Clips/` folder between the speaker and the camera."""
    shutil.copytree(raw / "volunteers" / "01M" / tcd_timit.CAMERA,
                    tmp_path / "volunteers" / "01M" / "Clips" / tcd_timit.CAMERA)
    clips = {c.clip_id: c for c in tcd_timit.discover(tmp_path)}
    assert sorted(clips) == ["volunteers/01M/sa1", "volunteers/01M/sa2", "volunteers/01M/si1445"]
    assert clips["volunteers/01M/sa1"].source_path == "volunteers/01M/Clips/straightcam/sa1.mp4"
    assert clips["volunteers/01M/sa1"].text == SA1
    assert "label error in volunteers/01M/Clips/straightcam/si1445.mp4" in clips["volunteers/01M/si1445"].label_error
    assert [p.name for p in tcd_timit.label_files(tmp_path)] == ["sa1.transcript.txt", "sa2.transcript.txt"]


def test_split_follows_design_test_numbers():
    ids = [f"{n:02d}{'MF'[n % 2]}" for n in range(1, 63)]
    test = {i for i in ids if tcd_timit.split_of("volunteers", i) == "test"}
    assert {int(i[:2]) for i in test} == {8, 9, 15, 18, 25, 28, 33, 41, 55, 56}
    assert tcd_timit.split_of("volunteers", "09F") == tcd_timit.split_of("volunteers", "9M") == "test"
    assert tcd_timit.split_of("lipspeakers", "Lipspkr1") == "train"
    assert {tcd_timit.split_of("volunteers", i) for i in ids} == {"train", "val", "test"}


def test_timit_format_and_unreadable_transcripts(tmp_path):
    video = tmp_path / "sx12.mp4"
    (tmp_path / "sx12.txt").write_text("0 46797 She had your dark suit in greasy wash water all year.\n")
    assert tcd_timit.read_transcript(video) == SA1
    (tmp_path / "sx12.transcript.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(tcd_timit.LabelError, match="unreadable"):
        tcd_timit.read_transcript(video)
    (tmp_path / "sx12.transcript.txt").write_text("\n \n")
    with pytest.raises(tcd_timit.LabelError, match="is empty"):
        tcd_timit.read_transcript(video)


def test_build_the_fixture_tree(raw, tmp_path):
    """The fixture tree, plus a video whose audio stream is missing (with its transcript): quarantined as GRID's."""
    from flows.build_dataset import BuildParams, build_dataset

    raw = Path(shutil.copytree(raw, tmp_path / "raw"))
    folder = raw / "volunteers" / "01M" / tcd_timit.CAMERA
    run_ffmpeg(ffmpeg.output(ffmpeg.input(str(folder / "sa2.mp4")).video, str(folder / "sx99.mp4"), vcodec="copy"))
    shutil.copy(folder / "sa2.transcript.txt", folder / "sx99.transcript.txt")
    out = Path(build_dataset(BuildParams(dataset="tcd_timit", raw_root=raw, data_root=tmp_path / "data", shard_size=4)))
    assert out.parent.name == "tcd_timit"
    table = manifest.read(out / store.MANIFEST).set_index("clip_id")
    assert sorted(table.index) == sorted([*FIXTURES, "volunteers/01M/sx99"])
    assert table.loc["volunteers/01M/sx99", "reason"] == "audio stream missing"
    bad = table.loc["volunteers/01M/si1445"]
    assert bad.status == "quarantined" and "no transcript" in bad.reason
    for clip_id in OK:
        row = table.loc[clip_id]
        assert row.status == "ok", f"{clip_id}: {row.reason}"
        assert row.text == (SA1 if clip_id.endswith("sa1") else SA2) and not row.words_timed
        assert_resampled_from_29_97_fps(out, row)
    assert set(table.loc[OK].split) >= {"test", "train"}
    card = store.read_card(out)
    assert card["counts"]["ok"] == 4 and card["counts"]["quarantined"] == 2 and card["validation"]["success"]
    assert card["validation"]["suite"] == "talkface_clips_tcd_timit"
    assert card["profile"]["expected"]["vocabulary_size"] is None  # TIMIT sentences: an open vocabulary
    assert card["profile"]["observed"]["fps_source"] == {"29.97": 4}
