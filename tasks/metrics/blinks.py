"""Blinks from the eye aspect ratio: blinks per second and median blink duration, the two blink statistics
Vougioukas et al. report for real and generated talking faces ("Realistic Speech-Driven Facial Animation with
GANs", IJCV 2019; GRID 0.45 blinks/s, 0.36 s for their model).

Eye aspect ratio (EAR; Soukupová & Čech, "Real-Time Eye Blink Detection using Facial Landmarks", CVWW 2016,
eq. 1), per eye on the six dlib points p1..p6 (36–41 for one eye, 42–47 for the other):
EAR = (‖p2 − p6‖ + ‖p3 − p5‖) / (2‖p1 − p4‖), about 0.25–0.35 with the eye open and falling towards 0.1 as it
closes; the two eyes are averaged. EAR is unchanged by a similarity transform, so crop and source landmarks agree.

Blink rule (this project's: an EAR dip that recovers, as in both sources, with thresholds relative to the face;
set on the 105 GRID s1 clips of the shared sample, where it finds 0.79 blinks/s): a blink is a trough of the EAR

1. whose prominence — how far the EAR rises on both sides before meeting a lower trough or the clip's end, the
   smaller of the two rises (`scipy.signal.find_peaks`) — is at least `min_drop` (25 %) of the clip's median EAR,
   which rejects landmark jitter (a few hundredths) and adapts to each face's open-eye EAR; and
2. that stays below half that depth (EAR < trough + prominence / 2) for at least `min_frames` (2) consecutive frames
   (80 ms at 25 fps), which rejects single-frame landmark glitches.

Its duration is the length of that run below half depth (the full width at half depth). That is shorter than the
start-to-end duration that Vougioukas et al.'s public detector (DinoMan/blink-detector) measures between the EAR
maxima around a sharp drop, so compare durations only with durations measured here. Troughs sharing one run count
once. A blink touching the clip's first or last frame is not a trough and is not counted.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

EYES = (slice(36, 42), slice(42, 48))  # dlib points of the two eyes, each p1..p6
FPS = 25.0
MIN_DROP = 0.25  # a blink's depth, as a fraction of the clip's median EAR
MIN_FRAMES = 2  # frames below half depth


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """EAR of each frame, the mean of both eyes: landmarks float (N, 68, 2) in pixels → float64 (N,) (Soukupová &
    Čech 2016, eq. 1). NaN landmarks give NaN. Raises ValueError on another shape."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {landmarks.shape}")
    ratios = []
    for eye in EYES:
        p = landmarks[:, eye]  # (N, 6, 2): p1..p6
        vertical = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        ratios.append(vertical / (2.0 * np.linalg.norm(p[:, 0] - p[:, 3], axis=-1)))
    return (ratios[0] + ratios[1]) / 2.0


@dataclass(frozen=True)
class Blink:
    """One blink: frames start..end-1 are below half depth (duration end − start frames), trough the lowest frame,
    depth its EAR prominence."""

    start: int
    end: int
    trough: int
    depth: float

    @property
    def frames(self) -> int:
        return self.end - self.start


def detect_blinks(ear: np.ndarray, min_drop: float = MIN_DROP, min_frames: int = MIN_FRAMES) -> list[Blink]:
    """The blinks of one clip's EAR series float (N,), in time order (rule in the module docstring).

    Raises ValueError when ear is not 1-D or has NaN (interpolate missing landmarks first, e.g.
    `tasks.align.interpolate_missing`).
    """
    ear = np.asarray(ear, dtype=np.float64)
    if ear.ndim != 1:
        raise ValueError(f"ear must be 1-D (N,), got {ear.shape}")
    if not np.isfinite(ear).all():
        raise ValueError("ear has NaN or inf: interpolate frames without landmarks first")
    if len(ear) < 3:
        return []
    troughs, props = find_peaks(-ear, prominence=min_drop * float(np.median(ear)))
    blinks: list[Blink] = []
    for trough, depth in zip(troughs, props["prominences"]):
        below = ear < ear[trough] + depth / 2.0
        start, end = trough, trough + 1
        while start > 0 and below[start - 1]:
            start -= 1
        while end < len(ear) and below[end]:
            end += 1
        if end - start < min_frames or (blinks and blinks[-1].start == start):
            continue
        blinks.append(Blink(int(start), int(end), int(trough), float(depth)))
    return blinks


@dataclass(frozen=True)
class BlinkStatistics:
    """Blink statistics over one or more clips: n_blinks, seconds (total duration of the clips), blinks_per_second =
    n_blinks / seconds, median_duration_s (median over all blinks, NaN when there are none)."""

    n_blinks: int
    seconds: float
    blinks_per_second: float
    median_duration_s: float


def blink_statistics(ears: np.ndarray | Sequence[np.ndarray], fps: float = FPS, min_drop: float = MIN_DROP,
                     min_frames: int = MIN_FRAMES) -> BlinkStatistics:
    """Blinks per second and median blink duration (s) of one clip's EAR series float (N,) or of several clips (a list
    of them, pooled: all blinks over all seconds), at `fps` frames per second (GRID and the store: 25).

    Raises ValueError as `detect_blinks` does, or when fps <= 0 or there are no frames.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if isinstance(ears, np.ndarray) and ears.ndim == 1:
        ears = [ears]
    n_frames, durations = 0, []
    for ear in ears:
        n_frames += len(ear)
        durations += [b.frames / fps for b in detect_blinks(ear, min_drop, min_frames)]
    if n_frames == 0:
        raise ValueError("no frames")
    seconds = n_frames / fps
    median = float(np.median(durations)) if durations else float("nan")
    return BlinkStatistics(len(durations), seconds, len(durations) / seconds, median)
