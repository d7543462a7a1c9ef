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
