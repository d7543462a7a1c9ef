"""Faces with dlib: HOG frontal detector and the 68-point shape predictor, with frame-to-frame tracking.

Detecting on every frame is the slow, naive way (about 26 frames/s on one core for GRID's 360×288). The tracker
instead predicts landmarks inside a box derived from the previous frame's landmarks and calls the detector only
when tracking is lost (first frame, a face that jumped or changed size, or no face before). The box keeps the
detector's convention (its offset and scale relative to the landmarks' extent, measured at the last detection),
so the predictor sees the same framing it was trained on and the box does not drift.

Models: `shape_predictor_68_face_landmarks.dat` from the face-recognition-models package (dlib's iBUG 300-W
model, Kazemi & Sullivan 2014); detector: dlib's HOG + linear SVM (`get_frontal_face_detector`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import dlib
import numpy as np

N_LANDMARKS = 68


def model_path(name: str = "shape_predictor_68_face_landmarks.dat") -> Path:
    """Path of a dlib model file shipped by face-recognition-models. Raises FileNotFoundError when absent."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the face-recognition-models package is not installed (pip install face-recognition-models)")
    path = Path(spec.origin).parent / "models" / name
    if not path.exists():
        raise FileNotFoundError(f"dlib model {name} not found at {path}")
    return path


@lru_cache(maxsize=1)
def load_models() -> tuple:
    """(detector, shape predictor), loaded once per process (the predictor file is about 100 MB)."""
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_path()))


def _points(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def _extent(points: np.ndarray) -> tuple[np.ndarray, float]:
    lo, hi = points.min(0), points.max(0)
    return (lo + hi) / 2, float(max(hi - lo))


@dataclass
class Track:
    """Result of tracking one clip: landmarks float32 (N, 68, 2) in source pixels (x, y), NaN where no face was
    found; `detections` is how many frames ran the detector."""

    landmarks: np.ndarray
    detections: int

    @property
    def missing(self) -> int:
        """Frames without a face."""
        return int(np.isnan(self.landmarks[:, 0, 0]).sum())


class FaceTracker:
    """Landmarks for every frame of a clip, re-detecting only when tracking is lost.

    max_shift: largest move of the landmarks' centre between frames, as a fraction of face size, before the
    track counts as lost; max_scale: largest change of face size (ratio) between frames; upsample: the HOG
    detector's largest upsampling (1, as in dlib's examples and the seeds' code, finds faces down to about 40 px);
    coarse_to_fine: try the detector without upsampling first (4× cheaper; finds faces above about 80 px) and
    upsample only when that finds none; detect_every_frame: the naive baseline, for benchmarks and tests.
    """

    def __init__(self, max_shift: float = 0.25, max_scale: float = 1.25, upsample: int = 1,
                 coarse_to_fine: bool = True, detect_every_frame: bool = False):
        self.detector, self.predictor = load_models()
        self.max_shift, self.max_scale, self.upsample = max_shift, max_scale, upsample
        self.coarse_to_fine, self.detect_every_frame = coarse_to_fine, detect_every_frame

    def detect(self, gray: np.ndarray) -> dlib.rectangle | None:
        """The largest face the HOG detector finds in a uint8 (H, W) image, or None."""
        for upsample in range(0 if self.coarse_to_fine else self.upsample, self.upsample + 1):
            faces = self.detector(gray, upsample)
            if len(faces):
                return max(faces, key=lambda r: r.area())
        return None

    def predict(self, gray: np.ndarray, box: dlib.rectangle) -> np.ndarray:
        """68 landmarks float32 (68, 2) in image pixels for the face inside `box`."""
        return _points(self.predictor(gray, box))

    def track(self, frames: np.ndarray, detect_every_frame: bool | None = None) -> Track:
        """Landmarks for frames uint8 (N, H, W, 3) RGB. `detect_every_frame=True` is the naive baseline
        (default: the tracker's setting)."""
        if detect_every_frame is None:
            detect_every_frame = self.detect_every_frame
        n = len(frames)
        out = np.full((n, N_LANDMARKS, 2), np.nan, np.float32)
        detections = 0
        prev = None  # last landmarks
        rel = None  # detector box relative to the landmarks' extent: (dx, dy, scale) in units of face size
        for t in range(n):
            gray = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)
            points = None
            if prev is not None and not detect_every_frame:
                centre, size = _extent(prev)
                c = centre + rel[:2] * size
                half = rel[2] * size / 2
                box = dlib.rectangle(int(c[0] - half), int(c[1] - half), int(c[0] + half), int(c[1] + half))
                points = self.predict(gray, box)
                new_centre, new_size = _extent(points)
                lost = (
                    np.linalg.norm(new_centre - centre) > self.max_shift * size
                    or not (1 / self.max_scale <= new_size / size <= self.max_scale)
                )
                if lost:
                    points = None
            if points is None:
                detections += 1
                box = self.detect(gray)
                if box is None:
                    prev = None
                    continue
                points = self.predict(gray, box)
                centre, size = _extent(points)
                box_centre = np.array([(box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2], np.float32)
                rel = np.array([*(box_centre - centre) / size, box.width() / size], np.float32)
            out[t] = points
            prev = points
        return Track(out, detections)
