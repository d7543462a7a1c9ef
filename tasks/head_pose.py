"""Head pose (yaw, pitch, roll) from the 68 landmarks, for the near-frontal filter Vougioukas et al. (IJCV 2019)
apply to LRW: a clip is near-frontal when yaw, pitch and roll stay under 10°.

Per frame, OpenCV's `solvePnP` (SQPnP, globally optimal) fits a six-point 3-D face to dlib landmarks 30, 8, 36,
45, 48, 54 (nose tip, chin, outer eye corners, mouth corners), with a pinhole camera whose focal length is the frame
width in pixels and whose principal point is the frame centre. The model's x and y are where dlib puts these
points on a frontal face: the alignment template (tasks/align.py) for the nose tip and eye corners, and for the
mouth corners and chin the mean of the 14 bundled GRID clips' aligned landmarks over all frames, mirrored to be
symmetric. Its depths are the generic head model's (the one popularised by learnopencv's "Head Pose Estimation
using OpenCV and Dlib": eye corners 135, mouth corners 125, chin 65 behind the nose tip, where the outer eye
corners are 450 apart). The anatomical model's own x and y (chin 330 below the nose where dlib's frontal mean
says 461) read frontal GRID faces as turned by 20–30°, which is why they are not used.

Axes are the camera's (x right, y down, z away from the camera) and the model faces the camera, so a frontal
head gives zero angles. Angles are the Euler angles of the fitted rotation from `cv2.RQDecomp3x3`, R = Rz·Ry·Rx:
pitch about x, yaw about y, roll about z (positive: clockwise in the image), in degrees. Per-frame landmark
noise moves single frames by a few degrees, so a clip's pose is summarised over frames after a running median
(`clip_pose`).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import median_filter

from tasks.align import ALIGN_POINTS, TEMPLATE

LANDMARK_IDS = (30, 8, 36, 45, 48, 54)  # nose tip, chin, outer eye corners (image left, right), mouth corners


def _frontal_points() -> np.ndarray:
    """The six points on a frontal face in crop units (x right, y down), in LANDMARK_IDS order."""
    t = {i: TEMPLATE[i - ALIGN_POINTS.start] for i in (30, 36)}
    return np.array([t[30], (0.5, 0.8654), t[36], (1 - t[36][0], t[36][1]), (0.3700, 0.6308), (0.6300, 0.6308)],
                    np.float64)


def _model_points() -> np.ndarray:
    """float64 (6, 3): the frontal points centred on the nose tip, scaled so the outer eye corners are 450 apart,
    with the generic model's depths."""
    xy = _frontal_points()
    xy = (xy - xy[0]) * 450.0 / (xy[3, 0] - xy[2, 0])
    depth = np.array([0.0, 65.0, 135.0, 135.0, 125.0, 125.0])
    return np.column_stack([xy, depth])


MODEL_POINTS = _model_points()
NEAR_FRONTAL_DEG = 10.0  # Vougioukas et al.'s LRW threshold on each of yaw, pitch and roll


def camera_matrix(frame_size: tuple[int, int]) -> np.ndarray:
    """float64 (3, 3) pinhole intrinsics for a frame of (height, width) pixels: focal = width, centre = middle."""
    h, w = frame_size
    return np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float64)


def head_pose(landmarks: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Per-frame head pose.

    Args:
        landmarks: float (N, 68, 2) dlib points in source-frame pixels (x, y), no NaN (interpolate first).
        frame_size: (height, width) of the source frames in pixels.

    Returns:
        float32 (N, 3): yaw, pitch, roll in degrees per frame (signs in the module docstring).

    Raises:
        ValueError: landmarks not (N, 68, 2) or not finite.
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks hold NaN or infinite values; interpolate missing frames first")
    k = camera_matrix(frame_size)
    out = np.zeros((len(landmarks), 3), np.float32)
    for i, points in enumerate(np.ascontiguousarray(landmarks[:, LANDMARK_IDS])):
        _, rvec, _ = cv2.solvePnP(MODEL_POINTS, points, k, None, flags=cv2.SOLVEPNP_SQPNP)
        pitch, yaw, roll = cv2.RQDecomp3x3(cv2.Rodrigues(rvec)[0])[0]
        out[i] = (yaw, pitch, roll)
    return out


def clip_pose(pose: np.ndarray, window: int = 7) -> tuple[float, float, float]:
    """A clip's (yaw, pitch, roll): the largest |angle| in degrees over its frames after a running median over
    `window` frames (nearest-edge padding), from `head_pose`'s float (N, 3). The near-frontal test is that all
    three are under NEAR_FRONTAL_DEG."""
    smoothed = median_filter(np.asarray(pose, np.float64), size=(min(window, len(pose)), 1), mode="nearest")
    yaw, pitch, roll = np.abs(smoothed).max(axis=0)
    return float(yaw), float(pitch), float(roll)
