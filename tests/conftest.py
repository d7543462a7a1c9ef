"""Shared fixtures. Everything runs for real: ffmpeg, dlib, zarr, Great Expectations, Prefect (a temporary local
server on SQLite under a per-session PREFECT_HOME) and MLflow (SQLite under the test's data root)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "grid"
SHARED = ROOT.parent / "shared" / "data" / "samples"  # real clips of the other datasets; absent in some clones
LRW_FACE = SHARED / "lrw" / "ABOUT_00001_00001.jpg"
LRW_SPEECH = SHARED / "tcd_timit" / "01M" / "straightcam" / "sa1.wav"
# the `lrw_raw` fixture's clips: (word, split, number) → Duration seconds written in the .txt
LRW_CLIPS = {("ABOUT", "train", 1): 0.32, ("ABOUT", "test", 1): 0.39,
             ("ABSOLUTELY", "train", 2): 0.56, ("ABSOLUTELY", "test", 3): 0.5}
LRW_BROKEN = ("ABOUT", "train", 7)  # its .txt has no Duration line
LRW_TILTED = ("ABSOLUTELY", "val", 4)  # the same face rolled by 20° in the image: not near-frontal

# Before anything imports Prefect: an isolated Prefect home, and no usage reporting.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="talkface-prefect-")
for name, value in (("PREFECT_SERVER_ANALYTICS_ENABLED", "false"), ("GX_ANALYTICS_ENABLED", "false"),
                    ("DO_NOT_TRACK", "true"), ("MLFLOW_ENABLE_TELEMETRY", "false")):
    os.environ.setdefault(name, value)


def talkface(*args: str, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed `talkface` CLI as a user would; returns the completed process (text mode)."""
    exe = Path(sys.executable).with_name("talkface")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)


def copy_clip(name: str, raw_root: Path, speaker: str = "s1", with_align: bool = True) -> Path:
    """Copy a bundled GRID clip (and its .align) into a raw root in the official layout."""
    src_speaker = "s2" if name == "swwp2s" else "s1"
    dst = raw_root / speaker / f"{name}.mpg"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLES / src_speaker / f"{name}.mpg", dst)
    if with_align:
        align = raw_root / "alignments" / speaker / f"{name}.align"
        align.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / "alignments" / src_speaker / f"{name}.align", align)
    return dst


def assert_resampled_from_29_97_fps(store_dir: Path, row) -> None:
    """An ok manifest row of a 29.97 fps source (CREMA-D, TCD-TIMIT): resampled to 25 fps, its 16 kHz audio in step
    with the video, its face crops in its shard."""
    from storage import shards

    assert row.fps_source == pytest.approx(29.97, abs=0.01)
    assert abs(row.n_frames - row.duration_s * 25) <= 1  # resampled to 25 fps
    assert abs(row.n_samples / 640 - row.n_frames) <= 1  # 16 kHz audio in step with the video
    n = int(row.frame_start)
    face = shards.open_shard(store_dir, row.shard)["face"][n : n + int(row.n_frames)]
    assert face.shape == (row.n_frames, 128, 128, 3)


def assert_same_store(a: Path, b: Path) -> None:
    """Two stores hold the same data: manifests equal row for row, the same complete shards, every array equal."""
    import numpy as np
    import pandas as pd

    from storage import manifest, shards, store

    pd.testing.assert_frame_equal(manifest.read(a / store.MANIFEST), manifest.read(b / store.MANIFEST))
    assert shards.completed(a) == shards.completed(b)
    for name in shards.completed(a):
        ga, gb = shards.open_shard(a, name), shards.open_shard(b, name)
        assert sorted(ga.array_keys()) == sorted(gb.array_keys()), name
        for field in ga.array_keys():
            np.testing.assert_array_equal(ga[field][:], gb[field][:], err_msg=f"{name}/{field}")


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """One real temporary Prefect server (SQLite) for the session, shared with the CLI subprocesses through
    PREFECT_API_URL, so each of them need not start its own."""
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = get_current_settings().api.url
        yield os.environ["PREFECT_API_URL"]
        os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server (server mode, a real HTTP endpoint on loopback) for the session (tests/s3.py)."""
    from tests import s3

    with s3.server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The moto server, with this process's AWS_* variables pointed at it for the test."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    """A real GRID clip: speaker s1, 3 s, 75 frames at 25 fps, 360×288, stereo 44.1 kHz audio."""
    return SAMPLES / "s1" / "bbaf2n.mpg"


@pytest.fixture(scope="session")
def grid_store(tmp_path_factory) -> Path:
    """A complete store built by the real `build_dataset` flow from the bundled GRID clips."""
    from flows.build_dataset import BuildParams, build_dataset

    data_root = tmp_path_factory.mktemp("data")
    return Path(build_dataset(BuildParams(raw_root=SAMPLES, data_root=data_root, workers=1, shard_size=4)))


@pytest.fixture(scope="session")
def photo_and_speech(tmp_path_factory) -> tuple[Path, Path]:
    """(a JPEG photo: frame 10 of s1/bbaf2n, 360×288; a 2.3 s stereo 44.1 kHz WAV of s1/lwik8n's speech), the
    inputs a user gives `talkface generate`."""
    import ffmpeg

    from tasks import media

    d = tmp_path_factory.mktemp("photo")
    photo, speech = d / "face.jpg", d / "speech-2.3s.wav"
    for stream in (ffmpeg.input(str(SAMPLES / "s1" / "bbaf2n.mpg")).video.filter("select", "eq(n,10)")
                   .output(str(photo), vframes=1, q=2),
                   ffmpeg.input(str(SAMPLES / "s1" / "lwik8n.mpg")).audio.output(str(speech), ar=44100, ac=2, t=2.3)):
        stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").run(
            cmd=media.ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)
    return photo, speech


def train_small(store_dir: Path, out_dir: Path, system: str, stage: str, inputs: dict | None = None, **fields):
    """`tasks.training.train_stage` of one registered stage at its "small" preset with `fields` replaced, on the
    CPU, in this process (inputs: the earlier stages' checkpoints it uses). Returns the TrainResult."""
    from models.registry import get_stage
    from tasks.training import Devices, train_stage

    s = get_stage(system, stage)
    return train_stage(system, s, s.Config.preset("small", **fields), store_dir, out_dir, Devices(accelerator="cpu"),
                       inputs=inputs)


def lrw_txt(word: str, duration: float) -> str:
    """A fixture .txt in the official LRW metadata format."""
    return f"Text: {word}\nConf: 0.9\nDuration: {duration} seconds\n"


def _ffmpeg(stream) -> None:
    from tasks import media

    stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").run(
        cmd=media.ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)


@pytest.fixture(scope="session")
def lrw_raw(tmp_path_factory) -> Path:
    """A fixture LRW raw root in the exact official layout, `lipread_mp4/<WORD>/{train,test,val}/<WORD>_<NNNNN>.
    {mp4,txt}` (LRW has no public video: BBC material). Each .mp4 is the real LRW still frame (`LRW_FACE`, 256×256)
    looped for 29 frames at 25 fps with a slow crop drift so the frames differ, muxed with 1.16 s of real speech
    (`LRW_SPEECH`); each .txt in the official format. The clips: `LRW_CLIPS` (ok), `LRW_BROKEN` (no Duration line),
    `LRW_TILTED` (the frame rotated by 20°, for the near-frontal filter). Fixtures, not LRW clips. Shared by the
    session: copy it before changing it. Skipped when a clone has no ../shared samples."""
    import ffmpeg

    if not (LRW_FACE.is_file() and LRW_SPEECH.is_file()):
        pytest.skip(f"shared samples missing: {LRW_FACE} or {LRW_SPEECH} (a clone without ../shared)")
    root = tmp_path_factory.mktemp("lrw-fixture")
    template = root / "template.mp4"
    video = (ffmpeg.input(str(LRW_FACE), loop=1, framerate=25).video
             .filter("crop", 240, 240, "n/2", "n/2").filter("scale", 256, 256))
    audio = ffmpeg.input(str(LRW_SPEECH), ss=0.4, t=1.16).audio
    _ffmpeg(ffmpeg.output(video, audio, str(template), vframes=29, t=1.16, vcodec="libx264", pix_fmt="yuv420p",
                          acodec="aac", ar=16000, ac=1, r=25))
    tilted = root / "tilted.mp4"
    source = ffmpeg.input(str(template))
    _ffmpeg(ffmpeg.output(source.video.filter("rotate", "20*PI/180", fillcolor="gray"), source.audio, str(tilted),
                          vcodec="libx264", pix_fmt="yuv420p", acodec="copy"))
    for (word, split, num), duration in {**LRW_CLIPS, LRW_BROKEN: None, LRW_TILTED: 0.5}.items():
        d = root / "lipread_mp4" / word / split
        d.mkdir(parents=True, exist_ok=True)
        name = f"{word}_{num:05d}"
        (d / f"{name}.mp4").write_bytes((tilted if (word, split, num) == LRW_TILTED else template).read_bytes())
        (d / f"{name}.txt").write_text(lrw_txt(word, duration) if duration else f"Text: {word}\nConf: 0.9\n")
    template.unlink()
    tilted.unlink()
    return root
