"""One source clip → the store's per-clip arrays (DESIGN, "Preprocessing"): decode at 25 fps, track landmarks,
smooth and align, cut the store's named crops (`storage.crops`: face, mouth, face_sda), extract 16 kHz mono audio
and its MFCC.

Anything that makes a clip unusable raises `ClipError` whose message is the manifest's quarantine reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, field_validator

from storage import audio
from storage.crops import DEFAULT_CROPS, check_crops
from tasks import align, head_pose, media
from tasks.face import FaceTracker

# Bump when a change to the preprocessing changes its output: it is part of every store's version digest.
PREPROCESS_VERSION = "3"  # 2: head pose per clip; 3: named crops, face_sda


class PreprocessParams(BaseModel):
    """Preprocessing parameters; all of them enter the store's version digest."""

    fps: float = Field(25.0, description="video frame rate of the store (frames/s)")
    sample_rate: int = Field(16000, description="audio sample rate of the store (Hz)")
    crops: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: dict(DEFAULT_CROPS),
        description="the crops to cut, name → (H, W) px (storage.crops: face 128×128, mouth 64×64, face_sda 128×96); "
                    "face is required")
    smooth_window: int = Field(7, ge=1, description="frames over which the alignment points are averaged")
    max_missing_fraction: float = Field(
        0.1, ge=0, le=1, description="largest share of frames without a face that interpolation may fill"
    )
    min_frames: int = Field(8, ge=1, description="shortest usable clip (frames at `fps`)")
    max_head_pose_deg: float | None = Field(
        None, gt=0, le=90, description="near-frontal filter: quarantine clips whose yaw, pitch or roll reaches this "
        "many degrees (10 for Vougioukas et al.'s LRW subset); None keeps every pose")

    @field_validator("crops")
    @classmethod
    def _known_crops(cls, crops: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        return check_crops(crops)

    @property
    def crop_size(self) -> int:
        """Side of the face crop (px): the pixels of the store's landmarks (the manifest's crop_size)."""
        return self.crops["face"][0]


class ClipError(RuntimeError):
    """A clip that cannot enter the store; `str(exc)` is the quarantine reason."""


@dataclass
class ClipArrays:
    """Everything the store keeps for one clip (DESIGN table): shapes per frame N, sample S, MFCC frame A."""

    crops: dict[str, np.ndarray]  # name → uint8 (N, H, W, 3) RGB, the build's crops (`PreprocessParams.crops`)
    landmarks: np.ndarray  # float32 (N, 68, 2) crop pixels
    landmarks_src: np.ndarray  # float32 (N, 68, 2) source pixels
    transform: np.ndarray  # float32 (N, 2, 3) source → crop
    audio: np.ndarray  # int16 (S,) at sample_rate
    mfcc: np.ndarray  # float32 (A, 13) at 100 Hz
    fps_source: float
    duration_s: float
    faces_missing: int
    head_pose: tuple[float, float, float]  # clip's largest |yaw|, |pitch|, |roll| in degrees (tasks/head_pose.py)

    @property
    def face(self) -> np.ndarray:
        """uint8 (N, crop, crop, 3): the face crop, in whose pixels `landmarks` are."""
        return self.crops["face"]

    def fields(self) -> dict[str, np.ndarray]:
        """The shard fields of this clip (DESIGN table): its crops and the other per-clip arrays."""
        return {**self.crops, "landmarks": self.landmarks, "landmarks_src": self.landmarks_src,
                "transform": self.transform, "audio": self.audio, "mfcc": self.mfcc}


def preprocess_clip(path: Path, params: PreprocessParams, tracker: FaceTracker | None = None) -> ClipArrays:
    """Run the whole per-clip pipeline on the video at `path`. Raises ClipError with the quarantine reason."""
    tracker = tracker or FaceTracker()
    try:
        decoded = media.decode(path, params.fps, params.sample_rate)
    except media.MediaError as exc:
        raise ClipError(str(exc)) from None
    frames, wave = decoded.frames, decoded.audio
    n = len(frames)
    if n < params.min_frames:
        raise ClipError(f"too short: {n} frames decoded (< {params.min_frames}); truncated or damaged file?")

    track = tracker.track(frames)
    if track.missing == n:
        raise ClipError(f"no face in {n}/{n} frames")
    if track.missing > params.max_missing_fraction * n:
        raise ClipError(f"no face in {track.missing}/{n} frames (more than {params.max_missing_fraction:.0%})")
    landmarks_src = align.interpolate_missing(track.landmarks)

    transform = align.face_transforms(landmarks_src, params.crop_size, params.smooth_window)
    crops = {name: align.warp(frames, transform if name == "face" else
                              align.crop_transforms(name, size, landmarks_src, params.smooth_window), size)
             for name, size in params.crops.items()}
    return ClipArrays(
        crops=crops,
        landmarks=align.apply(transform, landmarks_src),
        landmarks_src=landmarks_src,
        transform=transform,
        audio=wave,
        mfcc=audio.mfcc(wave, params.sample_rate),
        fps_source=decoded.fps_source,
        duration_s=decoded.duration_s,
        faces_missing=track.missing,
        head_pose=head_pose.clip_pose(head_pose.head_pose(landmarks_src, frames.shape[1:3])),
    )


def check_near_frontal(pose: tuple[float, float, float], limit_deg: float | None) -> None:
    """The optional near-frontal filter: raises ClipError naming the angles when one of (yaw, pitch, roll)
    reaches `limit_deg` degrees; no check when `limit_deg` is None."""
    if limit_deg is not None and max(pose) >= limit_deg:
        yaw, pitch, roll = pose
        raise ClipError(f"not near-frontal: head pose up to yaw {yaw:.1f}°, pitch {pitch:.1f}°, roll {roll:.1f}° "
                        f"(near-frontal filter: each under {limit_deg:g}°)")
