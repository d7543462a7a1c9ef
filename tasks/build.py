"""Building a store, the pure part: plan shards, build one shard (preprocess its clips, check the arrays, write
it), merge the shards' manifest rows. The Prefect flow (flows/build_dataset.py) only wires these together."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from storage import manifest, shards
from tasks.datasets.base import ClipSource
from tasks.face import FaceTracker
from tasks.preprocess import ClipArrays, ClipError, PreprocessParams, check_near_frontal, preprocess_clip

log = logging.getLogger(__name__)


def plan_shards(clips: list[ClipSource], shard_size: int) -> list[tuple[str, list[ClipSource]]]:
    """Clips sorted by clip_id, cut into consecutive shards of `shard_size` clips: (shard name, clips).
    The plan depends only on the sorted clip list, so a resumed build finds the same shards."""
    ordered = sorted(clips, key=lambda c: c.clip_id)
    return [
        (shards.shard_name(i), ordered[start : start + shard_size])
        for i, start in enumerate(range(0, len(ordered), shard_size))
    ]


def base_row(clip: ClipSource, sha256: str) -> dict:
    """The manifest row of a clip before preprocessing (labels, split, source); status to be decided."""
    row = manifest.empty_row()
    row.update(
        clip_id=clip.clip_id, dataset=clip.dataset, speaker=clip.speaker, split=clip.split,
        source_path=clip.source_path, source_sha256=sha256, text=clip.text, words_timed=clip.words_timed,
        words=[asdict(w) for w in clip.words], status=manifest.QUARANTINED, reason="",
    )
    unknown = set(clip.extras) - set(manifest.EXTRAS)
    if unknown:  # an adapter bug, not a bad clip: the column would silently vanish from the manifest
        raise ValueError(f"{clip.dataset} extras {sorted(unknown)} are not manifest extra columns {manifest.EXTRAS}")
    row.update(clip.extras)
    return row


def check_arrays(a: ClipArrays, params: PreprocessParams) -> None:
    """The writer's array checks: dtypes, shapes and lengths agree with the store contract, nothing is NaN.
    Raises ClipError naming the first violation."""
    n = len(a.face)
    if set(a.crops) != set(params.crops):
        raise ClipError(f"array check: crops {sorted(a.crops)}, expected {sorted(params.crops)}")
    expect = {
        **{name: (np.uint8, (n, h, w, 3)) for name, (h, w) in params.crops.items()},
        "landmarks": (np.float32, (n, 68, 2)),
        "landmarks_src": (np.float32, (n, 68, 2)),
        "transform": (np.float32, (n, 2, 3)),
    }
    for field, (dtype, shape) in expect.items():
        arr = a.fields()[field]
        if arr.dtype != dtype or arr.shape != shape:
            raise ClipError(f"array check: {field} is {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} {shape}")
    if a.audio.dtype != np.int16 or a.audio.ndim != 1:
        raise ClipError(f"array check: audio is {a.audio.dtype} {a.audio.shape}, expected int16 (S,)")
    if a.mfcc.dtype != np.float32 or a.mfcc.ndim != 2 or a.mfcc.shape[1] != 13:
        raise ClipError(f"array check: mfcc is {a.mfcc.dtype} {a.mfcc.shape}, expected float32 (A, 13)")
    for field in ("landmarks", "landmarks_src", "transform", "mfcc"):
        if not np.isfinite(getattr(a, field)).all():
            raise ClipError(f"array check: {field} holds NaN or infinite values")


def build_shard(store_dir: Path, name: str, clips: list[ClipSource], sha256: dict[str, str],
                params: PreprocessParams, logger: logging.Logger | logging.LoggerAdapter | None = None
                ) -> dict[str, int]:
    """Preprocess the shard's clips and write the shard with all their manifest rows (ok and quarantined), as the
    shard's only writer: under its writer lock (`shards.hold_writer`), so a second writer of the same shard (another
    build's task, a worker left over from a killed flow) waits, then finds the shard complete and keeps it.

    sha256: clip_id → source checksum. Returns counts {"ok": k, "quarantined": q}. A clip that fails anywhere
    gets a quarantined row with its reason; nothing is dropped and nothing raises for a bad clip. A shard already
    there that fails `shards.verify` is rebuilt and replaced. `logger` (default: this module's) gets the lock's
    waiting and takeover lines.
    """
    logger = logger or log
    with shards.hold_writer(store_dir, name, logger):
        problem = shards.verify(store_dir, name)
        if problem is None:
            logger.info("%s is complete already (another writer built it): kept", name)
            return _counts(manifest.read(shards.shard_path(store_dir, name) / shards.PART_MANIFEST).status)
        if problem != shards.NOT_BUILT:
            logger.info("%s: rebuilding the shard that failed verification", name)
        rows, arrays = _preprocess_shard(name, clips, sha256, params)
        shards.write_shard(store_dir, name, arrays, rows)
    return _counts(pd.Series([r["status"] for r in rows]))


def _counts(status: pd.Series) -> dict[str, int]:
    ok = int((status == manifest.OK).sum())
    return {"ok": ok, "quarantined": len(status) - ok}


def _preprocess_shard(name: str, clips: list[ClipSource], sha256: dict[str, str], params: PreprocessParams
                      ) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Every clip's manifest row and the shard's field arrays (ok clips concatenated along axis 0)."""
    tracker = FaceTracker()
    fields = shards.fields_of(params.crops)
    rows, parts = [], {f: [] for f in fields}
    offsets = dict.fromkeys(("frame", "audio", "mfcc"), 0)
    for clip in clips:
        row = base_row(clip, sha256[clip.clip_id])
        try:
            if clip.label_error:
                raise ClipError(clip.label_error)
            arrays = preprocess_clip(clip.path, params, tracker)
            row.update(zip(manifest.HEAD_POSE, arrays.head_pose))
            check_arrays(arrays, params)
            check_near_frontal(arrays.head_pose, params.max_head_pose_deg)
        except ClipError as exc:
            row["reason"] = str(exc)
        except Exception as exc:  # an unforeseen failure is still one clip's problem, not the build's
            log.exception("unexpected error on %s", clip.clip_id)
            row["reason"] = f"unexpected error: {type(exc).__name__}: {exc}"
        else:
            n, s, m = len(arrays.face), len(arrays.audio), len(arrays.mfcc)
            row.update(
                status=manifest.OK, shard=name,
                frame_start=offsets["frame"], n_frames=n, audio_start=offsets["audio"], n_samples=s,
                mfcc_start=offsets["mfcc"], n_mfcc=m, fps_source=arrays.fps_source, duration_s=arrays.duration_s,
                faces_missing=arrays.faces_missing, landmarks_min=float(arrays.landmarks.min()),
                landmarks_max=float(arrays.landmarks.max()), nan_count=0, crop_size=params.crop_size,
            )
            offsets["frame"] += n
            offsets["audio"] += s
            offsets["mfcc"] += m
            for field, data in arrays.fields().items():
                parts[field].append(data)
        if row["status"] != manifest.OK:
            log.warning("quarantined %s: %s", clip.clip_id, row["reason"])
        rows.append(row)
    return rows, {f: _concat(parts[f], f, params) for f in fields}


def _concat(parts: list[np.ndarray], field: str, params: PreprocessParams) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    if field in params.crops:
        return np.zeros((0, *params.crops[field], 3), np.uint8)
    empty = {
        "landmarks": ((0, 68, 2), np.float32), "landmarks_src": ((0, 68, 2), np.float32),
        "transform": ((0, 2, 3), np.float32), "audio": ((0,), np.int16), "mfcc": ((0, 13), np.float32),
    }[field]
    return np.zeros(*empty)


def merge_manifest(store_dir: Path, shard_names: list[str]) -> pd.DataFrame:
    """All shards' manifest rows as one DataFrame sorted by clip_id (the single merge of a build)."""
    frames = [manifest.read(shards.shard_path(store_dir, n) / shards.PART_MANIFEST) for n in shard_names]
    return pd.concat(frames, ignore_index=True).sort_values("clip_id", ignore_index=True)
