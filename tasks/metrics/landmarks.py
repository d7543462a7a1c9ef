"""LMD, the landmark distance (Chen et al., "Lip Movements Generation at a Glance", ECCV 2018; Chen et al.,
"Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss" (ATVGnet), CVPR 2019).

Per frame, the generated and the real landmarks of the selected points (default the mouth, dlib points 48–67) are
each mean-centred on their own centroid, which removes the global offset between the two faces; then the Euclidean
distance of each corresponding point pair is taken, in the landmarks' pixels. Two reductions over the points:

- `reduce="mean"`: the mean over the points, the form the papers describe (ATVGnet GRID 1.29, Chen 2018 GRID 1.18);
- `reduce="sum"`: the sum over the points, what the public evaluation code computes (lelechen63/ATVGnet
  `evaluation_matrix.py`, `compare_landmarks`: `np.sum(np.sqrt(np.sum((real - fake)**2, 1)))` over the 20 mouth
  points) — 20 × the mean for the mouth.

The clip value is the mean over frames. In the papers the landmarks of both videos are detected with dlib (the
68-point iBUG predictor, as the store's are); callers pass whatever landmarks they have, float (N, 68, 2) in pixels.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MOUTH = range(48, 68)  # dlib points 48–67: outer and inner lip contour
N_LANDMARKS = 68
REDUCTIONS = ("mean", "sum")


def _point_index(points: slice | Sequence[int]) -> slice | np.ndarray:
    if isinstance(points, slice):
        if not range(N_LANDMARKS)[points]:
            raise ValueError(f"points {points} select no landmark")
        return points
    index = np.asarray(list(points), dtype=np.intp)
    if index.size == 0 or index.min() < 0 or index.max() >= N_LANDMARKS:
        raise ValueError(f"points must be landmark indices in 0..{N_LANDMARKS - 1}, got {list(points)}")
    return index


def lmd_per_frame(generated: np.ndarray, real: np.ndarray, points: slice | Sequence[int] = MOUTH,
                  reduce: str = "mean") -> np.ndarray:
    """LMD of each frame: generated, real float (..., 68, 2) pixels (x, y) → float64 (...,), e.g. (N,) for (N, 68, 2).

    The selected `points` (a slice or indices; default the mouth 48–67) of each frame are mean-centred separately in
    generated and real; the Euclidean distance of each point pair is then averaged (`reduce="mean"`, the papers'
    form) or summed (`reduce="sum"`, the public code's form) over the points. NaN landmarks give NaN.

    Raises ValueError on mismatched shapes, a shape other than (..., 68, 2), points outside 0..67 or another reduce.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    generated, real = np.asarray(generated, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if generated.shape != real.shape or generated.shape[-2:] != (N_LANDMARKS, 2):
        raise ValueError(f"generated and real must both be (..., 68, 2), got {generated.shape} and {real.shape}")
    index = _point_index(points)
    g, r = generated[..., index, :], real[..., index, :]
    g = g - g.mean(axis=-2, keepdims=True)
    r = r - r.mean(axis=-2, keepdims=True)
    distance = np.linalg.norm(g - r, axis=-1)  # (..., P)
    return distance.mean(axis=-1) if reduce == "mean" else distance.sum(axis=-1)


def lmd(generated: np.ndarray, real: np.ndarray, points: slice | Sequence[int] = MOUTH, reduce: str = "mean") -> float:
    """LMD of a clip: `lmd_per_frame` averaged over frames, float, in the landmarks' pixels. Frames whose landmarks
    are NaN (no face found) make it NaN: drop them first. Raises ValueError as `lmd_per_frame` does."""
    return float(np.mean(lmd_per_frame(generated, real, points, reduce)))
