"""The dataset card (`card.json`): what a store holds, how it was made, with which software. Written last, it
marks the store complete (DESIGN, "The store")."""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from datetime import datetime, timezone

import pandas as pd

from tasks import media

PACKAGES = ("talkface", "numpy", "zarr", "pyarrow", "dlib-bin", "opencv-python-headless", "scikit-image",
            "python_speech_features", "ffmpeg-python", "imageio-ffmpeg", "great_expectations", "prefect", "torch", "mlflow")


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


def counts(table: pd.DataFrame) -> dict:
    """Clip counts per split and status, and totals: {"by_split": {split: {status: n}}, "ok": n, …}."""
    by_split = table.groupby(["split", "status"]).size().unstack(fill_value=0)
    ok = table[table.status == "ok"]
    return {
        "by_split": {s: {k: int(v) for k, v in row.items()} for s, row in by_split.iterrows()},
        "clips": int(len(table)),
        "ok": int(len(ok)),
        "quarantined": int((table.status != "ok").sum()),
        "frames": int(ok.n_frames.sum()) if len(ok) else 0,
        "speakers": {s: sorted(g.speaker.unique().tolist()) for s, g in table.groupby("split")},
    }


def make_card(dataset: str, version: str, params: dict, table: pd.DataFrame, validation: dict,
              started: datetime, flow_run_id: str | None) -> dict:
    """The card's content. `validation` summarises the Great Expectations run; times are UTC ISO 8601."""
    finished = datetime.now(timezone.utc)
    return {
        "dataset": dataset,
        "version": version,
        "parameters": params,
        "counts": counts(table),
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
