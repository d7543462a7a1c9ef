"""Blinks from the eye aspect ratio: blinks per second and median blink duration, the two blink statistics
Vougioukas et al. report for real and generated talking faces ("Realistic Speech-Driven Facial Animation with
GANs", IJCV 2019; Tab. 4 real GRID videos 0.39 blinks/s, 0.4 s; Tab. 5/6 their model 0.45 blinks/s, 0.36 s).

Eye aspect ratio (EAR; Soukupová & Čech, "Real-Time Eye Blink Detection using Facial Landmarks", CVWW 2016,
eq. 1), per eye on the six dlib points p1..p6 (36–41 for one eye, 42–47 for the other):
EAR = (‖p2 − p6‖ + ‖p3 − p5‖) / (2‖p1 − p4‖), about 0.25–0.35 with the eye open and falling towards 0.1 as it
closes; the two eyes are averaged. EAR is unchanged by a similarity transform, so crop and source landmarks agree.

Two detectors work on a clip's EAR series float (N,) at 25 fps; `blink_statistics(..., detector=...)` pools either
over clips into the same `BlinkStatistics`. Their blink counts and especially their durations differ (below), so
compare numbers only between runs of the same detector.

**"threshold"** (`threshold_blinks`, also `detect_blinks`; this project's rule and the default): an EAR dip that
recovers, with thresholds relative to the face, set on the 105 GRID s1 clips of the shared sample, where it finds
0.79 blinks/s. A blink is a trough of the EAR

1. whose prominence — how far the EAR rises on both sides before meeting a lower trough or the clip's end, the
   smaller of the two rises (`scipy.signal.find_peaks`) — is at least `min_drop` (25 %) of the clip's median EAR,
   which rejects landmark jitter (a few hundredths) and adapts to each face's open-eye EAR; and
2. that stays below half that depth (EAR < trough + prominence / 2) for at least `min_frames` (2) consecutive frames
   (80 ms at 25 fps), which rejects single-frame landmark glitches.

Its duration is the length of that run below half depth (the full width at half depth). Troughs sharing one run
count once. A blink touching the clip's first or last frame is not a trough and is not counted.

**"peaks"** (`peak_blinks`; the authors' detector, Vougioukas et al. 2019 §4 Tab. 3–4, as in the first author's
public DinoMan/blink-detector `blink/detector.py`, re-written here): with d = −diff(EAR) (d[t] = EAR[t] − EAR[t+1],
how much the EAR falls from frame t to t+1),

1. every drop `scipy.signal.find_peaks(d, height=0.072, distance=4)` starts a candidate blink at frame t (a local
   maximum of d, so never a fall from the first frame or into the last);
2. its start is t when EAR[t−1] ≤ EAR[t] (the fall begins at t), otherwise the last local maximum of the EAR at or
   above the clip's mid-level (min EAR + max EAR) / 2 before t (frame 0 when there is none);
3. its end is the first such EAR maximum after t and before the next drop; when there is none before the next drop
   the candidate is dropped (the next drop then usually starts at the same maximum, so a double dip counts once),
   and after the clip's last drop it ends at the last frame.

Its duration is end − start frames: from the open-eye maximum before the closing to the one after reopening, so
longer than the threshold rule's width at half depth (GRID s1: median 0.32 s against 0.16 s). The drop height is
0.072 as the project's spec (specs/vougioukas2019-sda.md §6) gives it; the public code's constant is 0.0425
(`PEAK_HEIGHT_PUBLIC_CODE`), which finds more, shallower blinks — pass `height=` to use it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.signal import find_peaks

EYES = (slice(36, 42), slice(42, 48))  # dlib points of the two eyes, each p1..p6
FPS = 25.0
MIN_DROP = 0.25  # threshold detector: a blink's depth, as a fraction of the clip's median EAR
MIN_FRAMES = 2  # threshold detector: frames below half depth
PEAK_HEIGHT = 0.072  # peak detector: smallest EAR fall from one frame to the next (spec §6)
PEAK_HEIGHT_PUBLIC_CODE = 0.0425  # the same constant in DinoMan/blink-detector (EYE_THRESH)
PEAK_DISTANCE = 4  # peak detector: frames between two drops, at least (the smaller one goes)
DETECTORS = ("threshold", "peaks")
Detector = Literal["threshold", "peaks"]


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


def _checked(ear: np.ndarray) -> np.ndarray:
    ear = np.asarray(ear, dtype=np.float64)
    if ear.ndim != 1:
        raise ValueError(f"ear must be 1-D (N,), got {ear.shape}")
    if not np.isfinite(ear).all():
        raise ValueError("ear has NaN or inf: interpolate frames without landmarks first")
    return ear


@dataclass(frozen=True)
class Blink:
    """One blink of the threshold detector: frames start..end-1 are below half depth (duration end − start frames),
    trough the lowest frame, depth its EAR prominence."""

    start: int
    end: int
    trough: int
    depth: float

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class PeakBlink:
    """One blink of the peak detector: start and end are the open-eye EAR frames around it (duration end − start
    frames), drop the frame t whose fall EAR[t] − EAR[t+1] found it, height that fall (EAR units)."""

    start: int
    end: int
    drop: int
    height: float

    @property
    def frames(self) -> int:
        return self.end - self.start


def threshold_blinks(ear: np.ndarray, min_drop: float = MIN_DROP, min_frames: int = MIN_FRAMES) -> list[Blink]:
    """The threshold detector's blinks of one clip's EAR series float (N,), in time order (module docstring).

    Raises ValueError when ear is not 1-D or has NaN (interpolate missing landmarks first, e.g.
    `tasks.align.interpolate_missing`).
    """
    ear = _checked(ear)
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


detect_blinks = threshold_blinks  # the name before the peak detector existed


def peak_blinks(ear: np.ndarray, height: float = PEAK_HEIGHT, distance: int = PEAK_DISTANCE) -> list[PeakBlink]:
    """The authors' peak detector's blinks of one clip's EAR series float (N,), in time order (module docstring):
    `height` the smallest frame-to-frame EAR fall that starts a blink, `distance` the fewest frames between two.

    Raises ValueError as `threshold_blinks` does.
    """
    ear = _checked(ear)
    if len(ear) < 3:
        return []
    fall = ear[:-1] - ear[1:]  # −diff: (N − 1,)
    drops, props = find_peaks(fall, height=height, distance=distance)
    level = (ear.min() + ear.max()) / 2.0  # an open-eye maximum is a local EAR maximum at least this high

    def maxima(lo: int, hi: int) -> np.ndarray:  # open-eye maxima strictly inside ear[lo:hi], as frame numbers
        return lo + find_peaks(ear[lo:hi], height=level)[0]

    blinks: list[PeakBlink] = []
    for i, (t, h) in enumerate(zip(drops, props["peak_heights"])):
        if t == 0 or ear[t - 1] <= ear[t]:
            start = t
        else:
            before = maxima(0, t + 1)
            start = int(before[-1]) if len(before) else 0
        last = i == len(drops) - 1
        after = maxima(t, len(ear) if last else drops[i + 1])
        if len(after):
            end = int(after[0])
        elif last:
            end = len(ear) - 1
        else:
            continue  # no reopening before the next drop: the public code drops this one
        blinks.append(PeakBlink(int(start), end, int(t), float(h)))
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
                     min_frames: int = MIN_FRAMES, *, detector: Detector = "threshold", height: float = PEAK_HEIGHT,
                     distance: int = PEAK_DISTANCE) -> BlinkStatistics:
    """Blinks per second and median blink duration (s) of one clip's EAR series float (N,) or of several clips (a list
    of them, pooled: all blinks over all seconds), at `fps` frames per second (GRID and the store: 25).

    detector: "threshold" (`threshold_blinks`, with min_drop and min_frames) or "peaks" (`peak_blinks`, the authors',
    with height and distance). Raises ValueError as the detectors do, on another detector, or when fps <= 0 or there
    are no frames.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if detector == "threshold":
        detect = lambda ear: threshold_blinks(ear, min_drop, min_frames)  # noqa: E731
    elif detector == "peaks":
        detect = lambda ear: peak_blinks(ear, height, distance)  # noqa: E731
    else:
        raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
    if isinstance(ears, np.ndarray) and ears.ndim == 1:
        ears = [ears]
    n_frames, durations = 0, []
    for ear in ears:
        n_frames += len(ear)
        durations += [b.frames / fps for b in detect(ear)]
    if n_frames == 0:
        raise ValueError("no frames")
    seconds = n_frames / fps
    median = float(np.median(durations)) if durations else float("nan")
    return BlinkStatistics(len(durations), seconds, len(durations) / seconds, median)


def peak_blink_statistics(ears: np.ndarray | Sequence[np.ndarray], fps: float = FPS, height: float = PEAK_HEIGHT,
                          distance: int = PEAK_DISTANCE) -> BlinkStatistics:
    """`blink_statistics` with the authors' peak detector (Vougioukas et al. 2019, Tab. 4–6)."""
    return blink_statistics(ears, fps, detector="peaks", height=height, distance=distance)
