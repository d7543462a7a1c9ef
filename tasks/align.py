"""Face alignment: temporal smoothing of the alignment points, similarity transforms onto fixed templates, and the
warps that cut the store's named crops (`storage.crops`): `face` 128×128, `mouth` 64×64, `face_sda` 128×96.

- `face` (ATVGnet, Chen et al. CVPR 2019): similarity transform from landmarks 27–44 (nose and eyes) onto a template.
- `mouth` (Chen et al. ECCV 2018): a square of side 1.3× the larger side of the box around points 48–67, taken in the
  face alignment (so it is upright with the face).
- `face_sda` (Vougioukas et al. IJCV 2019): similarity transform from the stable points 33, 36, 39, 42, 45 (nose tip,
  eye corners) onto a mean face, H 128 × W 96. Their mean face ships inside their model files only; ours [D] is
  `TEMPLATE`'s points (45 mirrored from 36), scaled so the mean face's box spans 0.85 of the width, centred: the nose
  tip falls on the middle row, so the lower half (rows 64–127, their reconstruction and sync input) holds mouth and
  chin.
- Every crop's alignment points are averaged over a 7-frame window (Vougioukas et al.: it stops jitter); centred
  here [D] (their face processor averages a forward window, which lags the face by 3 frames).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d
from skimage.transform import SimilarityTransform

ALIGN_POINTS = slice(27, 45)  # nose bridge and lower nose 27–35, eyes 36–44
MOUTH_POINTS = slice(48, 68)
MOUTH_SCALE = 1.3

# Template for points 27–44 in unit crop coordinates (x right, y down; multiplied by the crop side). It is the
# generalised Procrustes mean of the dlib landmarks of nine GRID clips (five speakers), made left-right symmetric
# with its mirror image, levelled (eyes horizontal), and placed so that the mean 68-point face's box spans
# 0.74 of the crop, centred: brows at 0.13, chin at 0.87, eyes at 0.26, mouth at 0.64
# (room for an open jaw).
TEMPLATE = np.array(
    [
        [0.5000, 0.2362], [0.5000, 0.2990], [0.5000, 0.3608], [0.5000, 0.4253], [0.4278, 0.4869],
        [0.4629, 0.4972], [0.5000, 0.5053], [0.5371, 0.4972], [0.5722, 0.4869], [0.2852, 0.2562],
        [0.3230, 0.2366], [0.3690, 0.2371], [0.4108, 0.2633], [0.3673, 0.2731], [0.3208, 0.2740],
        [0.5892, 0.2633], [0.6310, 0.2371], [0.6770, 0.2366],
    ],
    np.float32,
)


def interpolate_missing(landmarks: np.ndarray) -> np.ndarray:
    """Fill frames whose landmarks are NaN by linear interpolation in time (edge frames copy the nearest).

    landmarks: float32 (N, 68, 2) with NaN rows → float32 (N, 68, 2) without. Raises ValueError if all are NaN.
    """
    ok = ~np.isnan(landmarks[:, 0, 0])
    if not ok.any():
        raise ValueError("no frame has landmarks")
    if ok.all():
        return landmarks
    t = np.arange(len(landmarks))
    flat = landmarks.reshape(len(landmarks), -1)
    filled = np.stack([np.interp(t, t[ok], flat[ok, j]) for j in range(flat.shape[1])], 1)
    return filled.reshape(landmarks.shape).astype(np.float32)


def smooth(points: np.ndarray, window: int = 7) -> np.ndarray:
    """Moving average over `window` frames (edges repeat the end frames): float32 (N, K, 2) → same shape."""
    if window <= 1 or len(points) < 2:
        return points
    return uniform_filter1d(points, size=window, axis=0, mode="nearest").astype(np.float32)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src (K, 2) onto dst (K, 2), as a
    float32 (2, 3) affine matrix (scikit-image's estimate, Umeyama 1991)."""
    return SimilarityTransform.from_estimate(src, dst).params[:2].astype(np.float32)


def similarity_batch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`similarity` for every frame at once: src float (N, K, 2) onto one dst (K, 2) → float32 (N, 2, 3).

    Umeyama 1991, eqs. 38–42: with centred points and the covariance Σ = dstᵀ·src / K = U·S·Vᵀ, the rotation is
    R = U·D·Vᵀ (D = diag(1, ±1) against reflections), the scale c = tr(S·D) / σ²_src, the translation
    μ_dst − c·R·μ_src. One batched SVD instead of N calls: about 0.02 ms a frame against 0.25 ms.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_src, mu_dst = src.mean(1), dst.mean(0)  # (N, 2), (2,)
    s, d = src - mu_src[:, None], dst - mu_dst  # (N, K, 2), (K, 2)
    cov = np.einsum("ki,nkj->nij", d, s) / len(dst)  # (N, 2, 2)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones_like(sv)
    sign[np.linalg.det(u) * np.linalg.det(vt) < 0, 1] = -1
    rot = u @ (sign[:, :, None] * vt)  # (N, 2, 2)
    scale = (sv * sign).sum(1) / (s**2).sum((1, 2)) * len(dst)  # (N,)
    shift = mu_dst - scale[:, None] * np.einsum("nij,nj->ni", rot, mu_src)  # (N, 2)
    return np.concatenate([scale[:, None, None] * rot, shift[:, :, None]], 2).astype(np.float32)


# face_sda: TEMPLATE's points 33, 36, 39, 42 (rows 6, 9, 12, 15) and 45 (36 mirrored), unit coordinates
SDA_POINTS = (33, 36, 39, 42, 45)
SDA_TEMPLATE = np.concatenate([TEMPLATE[[6, 9, 12, 15]], [[1 - TEMPLATE[9, 0], TEMPLATE[9, 1]]]]).astype(np.float32)
SDA_FACE_WIDTH = 0.85  # share of the crop's width the mean face's box spans (its box is 0.74 of TEMPLATE's unit)


def sda_template(size: tuple[int, int]) -> np.ndarray:
    """`SDA_TEMPLATE` in pixels of an (H, W) crop: float32 (5, 2), x right, y down; the face scaled by width."""
    h, w = size
    scale = SDA_FACE_WIDTH / 0.74 * w
    return ((SDA_TEMPLATE - 0.5) * scale + [w / 2, h / 2]).astype(np.float32)


def face_transforms(landmarks_src: np.ndarray, crop_size: int = 128, window: int = 7) -> np.ndarray:
    """Per-frame source → crop similarity matrices float32 (N, 2, 3), fitted on the points 27–44 after
    smoothing them over `window` frames, onto `TEMPLATE` scaled to `crop_size` pixels."""
    return similarity_batch(smooth(landmarks_src[:, ALIGN_POINTS], window), TEMPLATE * crop_size)


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply affine matrices (N, 2, 3) to points (N, K, 2) → float32 (N, K, 2)."""
    return (np.einsum("nij,nkj->nki", transform[:, :, :2], points) + transform[:, None, :, 2]).astype(np.float32)


def sda_transforms(landmarks_src: np.ndarray, size: tuple[int, int] = (128, 96), window: int = 7) -> np.ndarray:
    """Per-frame source → `face_sda` crop matrices float32 (N, 2, 3): points 33, 36, 39, 42, 45 smoothed over
    `window` frames, fitted onto `sda_template(size)` (Vougioukas et al. IJCV 2019, Sec. 3.1.1)."""
    return similarity_batch(smooth(landmarks_src[:, list(SDA_POINTS)], window), sda_template(size))


def mouth_transforms(face_transform: np.ndarray, landmarks_crop: np.ndarray, mouth_size: int = 64) -> np.ndarray:
    """Source → mouth-crop matrices float32 (N, 2, 3): the face alignment followed by the square of side 1.3×
    the larger side of the box around crop-space points 48–67 (centred on the box), scaled to `mouth_size`."""
    mouth = landmarks_crop[:, MOUTH_POINTS]
    lo, hi = mouth.min(1), mouth.max(1)  # (N, 2)
    side = MOUTH_SCALE * (hi - lo).max(1)  # (N,)
    origin = (lo + hi) / 2 - side[:, None] / 2
    scale = mouth_size / side
    out = face_transform * scale[:, None, None]
    out[:, :, 2] -= origin * scale[:, None]
    return out.astype(np.float32)


def crop_transforms(name: str, size: tuple[int, int], landmarks_src: np.ndarray, window: int = 7) -> np.ndarray:
    """Source → crop matrices float32 (N, 2, 3) of the store's crop `name` (`storage.crops.CROPS`) at (H, W) `size`,
    from source-frame landmarks float32 (N, 68, 2) without gaps. Raises ValueError for another name."""
    if name == "face":
        return face_transforms(landmarks_src, size[0], window)
    if name == "mouth":  # the mouth box is taken in the face alignment; its scale cancels out
        face = face_transforms(landmarks_src, 128, window)
        return mouth_transforms(face, apply(face, landmarks_src), size[0])
    if name == "face_sda":
        return sda_transforms(landmarks_src, size, window)
    raise ValueError(f"no alignment for crop {name!r}")


def relative(from_crop: np.ndarray, to_crop: np.ndarray) -> np.ndarray:
    """Crop-to-crop matrices float32 (N, 2, 3): pixels of crop A -> pixels of crop B, given the source -> A and
    source -> B matrices (N, 2, 3) of the same frames (to_crop ∘ from_crop⁻¹; e.g. face crop -> mouth crop)."""
    n = len(from_crop)
    a = np.concatenate([from_crop, np.tile([[[0.0, 0.0, 1.0]]], (n, 1, 1))], 1).astype(np.float64)  # (N, 3, 3)
    return (to_crop.astype(np.float64) @ np.linalg.inv(a)).astype(np.float32)


def warp(frames: np.ndarray, transforms: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Warp frames uint8 (N, H, W, 3) by matrices (N, 2, 3) to uint8 (N, h, w, 3), bilinear, black border;
    size: (h, w), or one side for a square."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    out = np.empty((len(frames), h, w, 3), np.uint8)
    for t, (frame, m) in enumerate(zip(frames, transforms)):
        out[t] = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out
