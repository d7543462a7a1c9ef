"""The dataset card (`card.json`): what a store holds, how it was made, with which software. Written last, it
marks the store complete (DESIGN, "The store").

Each dataset's card also carries its `profile` (tasks/datasets): the reference, what its clips are expected to be
(the ranges, value sets and vocabulary its Great Expectations suite checks) and what the ok clips of this store
are: source frame rates, durations, words per clip, vocabulary and most frequent words, texts, the extras'
value counts and the head pose.
"""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from storage import manifest
from tasks import media
from tasks.datasets.base import DatasetProfile
from tasks.head_pose import NEAR_FRONTAL_DEG

PACKAGES = ("talkface", "numpy", "zarr", "pyarrow", "dlib-bin", "opencv-python-headless", "scikit-image",
            "python_speech_features", "ffmpeg-python", "imageio-ffmpeg", "great_expectations", "prefect",
            "prefect-dask", "distributed", "torch", "mlflow")


def software_versions() -> dict[str, str]:
    """Installed versions of the packages the build depends on, Python's, and ffmpeg's first version line."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        exe = media.ffmpeg_exe()
        versions["ffmpeg"] = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
        versions["ffmpeg_path"] = exe
    except OSError:
        versions["ffmpeg"] = "not found"
    return versions


def counts(table: pd.DataFrame, list_speakers: bool = True) -> dict:
    """Clip counts per split and status, and totals: {"by_split": {split: {status: n}}, "ok": n, …}; `speakers`
    lists each split's speakers, or counts them when `list_speakers` is False (LRW: one "speaker" per clip)."""
    by_split = table.groupby(["split", "status"]).size().unstack(fill_value=0)
    ok = table[table.status == "ok"]
    return {
        "by_split": {s: {k: int(v) for k, v in row.items()} for s, row in by_split.iterrows()},
        "clips": int(len(table)),
        "ok": int(len(ok)),
        "quarantined": int((table.status != "ok").sum()),
        "frames": int(ok.n_frames.sum()) if len(ok) else 0,
        "speakers": {s: sorted(g.speaker.unique().tolist()) if list_speakers else int(g.speaker.nunique())
                     for s, g in table.groupby("split")},
    }


def _spread(values: pd.Series) -> dict | None:
    """min, median and max of a numeric series (None when empty), rounded to 3 decimals."""
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if v.empty:
        return None
    return {"min": round(v.min(), 3), "median": round(float(v.median()), 3), "max": round(v.max(), 3)}


def profile_section(profile: DatasetProfile, table: pd.DataFrame, top_words: int = 20) -> dict:
    """The card's `profile`: what the dataset's clips are expected to be, and what this store's ok clips are.

    Units: fps_source frames/s, duration_s seconds, n_frames frames at 25 fps, head pose degrees (each clip's
    largest |angle|, tasks/head_pose.py).
    """
    ok = table[table.status == "ok"]
    words = [w["word"] for ws in ok.words if ws is not None for w in ws]
    pose = ok[list(manifest.HEAD_POSE)].astype(float).dropna()
    frontal = (pose.max(axis=1) < NEAR_FRONTAL_DEG).mean()
    fps = ok.fps_source.astype(float).round(2).value_counts().sort_index()
    observed = {
        "fps_source": {f"{k:g}": int(v) for k, v in fps.items()},
        "duration_s": _spread(ok.duration_s),
        "n_frames": _spread(ok.n_frames),
        "words_per_clip": _spread(ok.words.map(lambda ws: 0 if ws is None else len(ws))),
        "vocabulary_size": len(set(words)),
        "top_words": {str(k): int(v) for k, v in pd.Series(words, dtype=object).value_counts().head(top_words).items()},
        "texts": int(ok.text.nunique()),
        "extras": {c: {str(k): int(v) for k, v in ok[c].value_counts().sort_index().items()}
                   for c in ("emotion", "intensity", "sex") if ok[c].notna().any()},
        "head_pose_deg": {
            "median": dict(zip(("yaw", "pitch", "roll"), np.round(pose.median().to_numpy(), 1).tolist())),
            f"near_frontal_share_under_{NEAR_FRONTAL_DEG:g}": round(float(frontal), 3),
        } if len(pose) else None,
    }
    if ok.age.notna().any():
        observed["age"] = _spread(ok.age)
    return {
        "reference": profile.reference,
        "expected": {
            "ranges": {k: list(v) for k, v in profile.ranges.items()},
            "value_sets": {k: list(v) for k, v in profile.value_sets.items()},
            "vocabulary_size": len(profile.vocabulary) if profile.vocabulary is not None else None,
            "texts": sorted(profile.texts) if profile.texts is not None else None,
        },
        "observed": observed,
    }


def make_card(profile: DatasetProfile, version: str, params: dict, table: pd.DataFrame, validation: dict,
              started: datetime, flow_run_id: str | None) -> dict:
    """The card's content for a store of `profile.name`. `validation` summarises the Great Expectations run;
    times are UTC ISO 8601."""
    finished = datetime.now(timezone.utc)
    return {
        "dataset": profile.name,
        "version": version,
        "parameters": params,
        "counts": counts(table, list_speakers=profile.speaker_ids),
        "profile": profile_section(profile, table),
        "validation": validation,
        "software": software_versions(),
        "build": {
            "started": started.isoformat(),
            "finished": finished.isoformat(),
            "seconds": round((finished - started).total_seconds(), 1),
            "prefect_flow_run_id": flow_run_id,
        },
        "files": {"manifest": "manifest.parquet", "shards": "shards/", "pca": "pca.npz", "validation": "validation/",
                  "montage": "montage.png"},
    }
