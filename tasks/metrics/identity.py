"""ACD, the average content distance: how far the identity in generated frames drifts from the still image they were
generated from (Tulyakov et al., "MoCoGAN", CVPR 2018; used for talking faces by Vougioukas et al., "Realistic
Speech-Driven Facial Animation with GANs", IJCV 2019).

Faces are embedded with dlib's 128-d face descriptor (`dlib_face_recognition_resnet_model_v1.dat` from the
face-recognition-models package, a ResNet trained for face verification; two faces whose descriptors are less than
0.6 apart are usually the same person). The papers used OpenFace's embedding, so absolute values differ from theirs:
compare ACD numbers computed here only with each other.

A face is located with the project's detector and 68-point predictor (`tasks.face.load_models`; dlib's HOG detector,
upsampling once, the largest face) unless its 68 landmarks are given; `compute_face_descriptor` then aligns the face
chip from the 68-point shape itself. Frames where no face is found are counted and skipped, never an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import dlib
import numpy as np

from tasks.face import load_models, model_path

DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
DESCRIPTOR_SIZE = 128
METRICS = ("euclidean", "cosine")


@lru_cache(maxsize=1)
def load_descriptor_model() -> dlib.face_recognition_model_v1:
    """dlib's face recognition ResNet, loaded once per process. Raises FileNotFoundError when the file is absent."""
    return dlib.face_recognition_model_v1(str(model_path(DESCRIPTOR_MODEL)))


def _shape_from_points(points: np.ndarray) -> dlib.full_object_detection:
    """A dlib 68-point shape from landmarks float (68, 2) in pixels (x, y), its box the points' bounding box."""
    xy = np.rint(points).astype(int)
    box = dlib.rectangle(*(int(v) for v in (*xy.min(0), *xy.max(0))))
    return dlib.full_object_detection(box, [dlib.point(int(x), int(y)) for x, y in xy])


def _find_shape(frame: np.ndarray) -> dlib.full_object_detection | None:
    """The 68-point shape of the largest face the HOG detector finds (upsampling once) in an RGB frame, or None."""
    detector, predictor = load_models()
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    faces = detector(gray, 1)
    if not len(faces):
        return None
    return predictor(gray, max(faces, key=lambda r: r.area()))


def face_descriptors(frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
    """dlib face descriptors float64 (N, 128) of frames uint8 (N, H, W, 3) or (H, W, 3) RGB; rows of NaN where no face
    is found. `landmarks` float (N, 68, 2) (or (68, 2)) in the frames' pixels skips detection (NaN rows count as no
    face). Raises ValueError on frames that are not uint8 RGB or landmarks of another shape."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
        landmarks = None if landmarks is None else np.asarray(landmarks)[None]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (N, H, W, 3) or (H, W, 3), got {frames.dtype} {frames.shape}")
    if landmarks is not None and np.shape(landmarks) != (len(frames), 68, 2):
        raise ValueError(f"landmarks must be ({len(frames)}, 68, 2), got {np.shape(landmarks)}")
    model = load_descriptor_model()
    out = np.full((len(frames), DESCRIPTOR_SIZE), np.nan)
    for t, frame in enumerate(frames):
        frame = np.ascontiguousarray(frame)
        if landmarks is None:
            shape = _find_shape(frame)
        else:
            shape = None if np.isnan(landmarks[t]).any() else _shape_from_points(landmarks[t])
        if shape is not None:
            out[t] = np.asarray(model.compute_face_descriptor(frame, shape))
    return out


def descriptor_distance(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distance of descriptors a float (..., 128) to b float (..., 128) → float64 (...): Euclidean, or cosine
    distance 1 − cos(a, b) (0 for the same direction, up to 2). NaN rows give NaN. Raises ValueError on another
    metric."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if metric == "euclidean":
        return np.linalg.norm(a - b, axis=-1)
    return 1.0 - np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@dataclass(frozen=True)
class ContentDistance:
    """ACD of one generated clip: per_frame float64 (N,) distance of each frame's descriptor to the still's (NaN where
    no face was found), their mean over the frames with a face (NaN if none has one), and how many had none."""

    per_frame: np.ndarray
    mean: float
    n_missing: int


def acd(still: np.ndarray, generated: np.ndarray, *, still_landmarks: np.ndarray | None = None,
        landmarks: np.ndarray | None = None, metric: str = "euclidean") -> ContentDistance:
    """Average content distance between the still image uint8 (H, W, 3) RGB and each generated frame uint8
    (N, H', W', 3) RGB: the mean over frames with a face of the descriptor distance (`metric`: "euclidean", dlib's
    native one, or "cosine"). Optional landmarks float (68, 2) / (N, 68, 2) in pixels skip face detection.

    Frames without a face are counted in `n_missing` and skipped. Raises ValueError when the still has no face, on
    malformed inputs or another metric.
    """
    reference = face_descriptors(still, still_landmarks)[0]
    if np.isnan(reference).any():
        raise ValueError("no face found in the still image")
    distances = descriptor_distance(face_descriptors(generated, landmarks), reference, metric)
    found = ~np.isnan(distances)
    mean = float(distances[found].mean()) if found.any() else float("nan")
    return ContentDistance(per_frame=distances, mean=mean, n_missing=int((~found).sum()))
