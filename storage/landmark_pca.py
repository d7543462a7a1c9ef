"""ATVGnet landmark PCA: 68 dlib points <-> 6 PCA coefficients (Chen et al., CVPR 2019, Sec. 3.1).

AT-net does not predict 136 landmark coordinates but the first 6 coefficients of a PCA of the landmarks, fitted on
the training split (`pca.npz` in the store, DESIGN "The store"). Conventions, as in the authors' public code
(lelechen63/ATVGnet, `code/atnet.py`, `code/demo.py`) adapted to this project's aligned 128-pixel crops:

- normalise: crop pixels -> about [-1, 1] with `x / crop_size * 2 - 1` (same for y);
- flatten each (68, 2) shape to 136 values in (x0, y0, x1, y1, ..., x67, y67) order;
- subtract the training mean and project on 6 components: `coeffs = (flat - mean) @ components.T`;
- back: `flat = coeffs @ components + mean`, then un-normalise to crop pixels.

At inference the public code multiplies coefficients 1..5 (not 0) by the "boost" omega = 2 * (1.1, 1.2, 1.3, 1.4, 1.5)
= (2.2, 2.4, 2.6, 2.8, 3.0) to exaggerate mouth motion, which an MSE-trained model under-predicts. Here the boost is
explicit and off by default: `from_pca(coeffs, boost=True)` applies `BOOST`, or pass your own 6 factors.

Pure numpy (plus scikit-learn for the fit); the only I/O is `save`/`load` of `pca.npz` and `fit_store_pca`, which
reads a store's train-split landmarks.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from storage import location

N_POINTS = 68
N_COMPONENTS = 6
# omega per PCA component; component 0 is left as is (ATVGnet demo.py: fake_lmark[:, 1:6] *= 2 * [1.1 .. 1.5])
BOOST = np.array([1.0, 2.2, 2.4, 2.6, 2.8, 3.0], dtype=np.float32)
PCA_KEYS = ("mean", "components", "explained_variance", "crop_size")


@dataclass(frozen=True)
class LandmarkPCA:
    """A fitted landmark PCA.

    mean: float32 (136,) in normalised units (crop pixels / crop_size * 2 - 1), (x0, y0, x1, y1, ...) order.
    components: float32 (k, 136), orthonormal rows, k = 6 for ATVGnet.
    explained_variance: float32 (k,), variance of each coefficient on the fit data (normalised units squared).
    crop_size: side of the face crop in pixels the landmarks are given in (128 in the store).
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    crop_size: int

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def to_pca(self, landmarks_px: np.ndarray) -> np.ndarray:
        """Landmarks float (..., 68, 2) in crop pixels (x, y) -> coefficients float32 (..., k).

        Raises ValueError when the trailing shape is not (68, 2).
        """
        landmarks_px = np.asarray(landmarks_px)
        if landmarks_px.shape[-2:] != (N_POINTS, 2):
            raise ValueError(f"landmarks must end in (68, 2), got {landmarks_px.shape}")
        flat = normalise(landmarks_px, self.crop_size).reshape(*landmarks_px.shape[:-2], 2 * N_POINTS)
        return ((flat - self.mean.astype(np.float64)) @ self.components.T.astype(np.float64)).astype(np.float32)

    def from_pca(self, coeffs: np.ndarray, boost: bool | Sequence[float] = False) -> np.ndarray:
        """Coefficients float (..., k) -> landmarks float32 (..., 68, 2) in crop pixels (x, y).

        boost: False (default) reconstructs as is; True multiplies the coefficients by `BOOST` (the paper's omega);
        a sequence of k floats multiplies by those factors. Raises ValueError on a wrong trailing size.
        """
        coeffs = np.asarray(coeffs, dtype=np.float64)
        if coeffs.shape[-1] != self.n_components:
            raise ValueError(f"coefficients must end in {self.n_components}, got {coeffs.shape}")
        factors = boost_factors(boost, self.n_components)
        if factors is not None:
            coeffs = coeffs * factors
        flat = coeffs @ self.components.astype(np.float64) + self.mean.astype(np.float64)
        return denormalise(flat.reshape(*coeffs.shape[:-1], N_POINTS, 2), self.crop_size).astype(np.float32)


def boost_factors(boost: bool | Sequence[float], n_components: int = N_COMPONENTS) -> np.ndarray | None:
    """The factors `from_pca` multiplies coefficients by: None for False, `BOOST` for True, else the given k floats.

    Raises ValueError when a sequence is not k long, or True is asked for with k != 6.
    """
    if boost is False or boost is None:
        return None
    factors = BOOST if boost is True else np.asarray(boost, dtype=np.float64)
    if factors.shape != (n_components,):
        raise ValueError(f"boost needs {n_components} factors, got shape {factors.shape}")
    return factors.astype(np.float64)


def normalise(landmarks_px: np.ndarray, crop_size: int) -> np.ndarray:
    """Crop pixels -> about [-1, 1]: `x / crop_size * 2 - 1`, float64, same shape."""
    return np.asarray(landmarks_px, dtype=np.float64) / crop_size * 2.0 - 1.0


def denormalise(landmarks: np.ndarray, crop_size: int) -> np.ndarray:
    """Inverse of `normalise`: `(x + 1) / 2 * crop_size`, float64, same shape."""
    return (np.asarray(landmarks, dtype=np.float64) + 1.0) / 2.0 * crop_size


def fit_landmark_pca(landmarks: np.ndarray, crop_size: int, n_components: int = N_COMPONENTS) -> LandmarkPCA:
    """Fit the PCA on landmarks float (N, 68, 2) in crop pixels (sklearn PCA, svd_solver="full": deterministic).

    Raises ValueError on a wrong shape, non-finite values, or fewer than n_components + 1 shapes.
    """
    from sklearn.decomposition import PCA

    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (N_POINTS, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {landmarks.shape}")
    if landmarks.shape[0] <= n_components:
        raise ValueError(f"need more than {n_components} shapes to fit {n_components} components, got {landmarks.shape[0]}")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks contain NaN or inf")
    flat = normalise(landmarks, crop_size).reshape(len(landmarks), 2 * N_POINTS)
    pca = PCA(n_components=n_components, svd_solver="full").fit(flat)
    return LandmarkPCA(
        mean=pca.mean_.astype(np.float32),
        components=pca.components_.astype(np.float32),
        explained_variance=pca.explained_variance_.astype(np.float32),
        crop_size=int(crop_size),
    )


def save(pca: LandmarkPCA, path: Path) -> Path:
    """Write `pca` to `path` (`pca.npz`: mean (136,), components (k, 136), explained_variance (k,), crop_size ()).

    Written at once (`storage.location.write_bytes`: a rename, or one PUT), so a reader never sees half a file.
    Returns `path`.
    """
    path, buffer = location.as_path(path), io.BytesIO()
    np.savez(
        buffer,
        mean=pca.mean.astype(np.float32),
        components=pca.components.astype(np.float32),
        explained_variance=pca.explained_variance.astype(np.float32),
        crop_size=np.int64(pca.crop_size),
    )
    location.write_bytes(path, buffer.getvalue())
    return path


def load(path: Path) -> LandmarkPCA:
    """Read a `pca.npz` written by `save`. Raises FileNotFoundError, KeyError on a missing key, ValueError on bad shapes."""
    with np.load(location.open_bytes(location.as_path(path))) as z:
        missing = [k for k in PCA_KEYS if k not in z.files]
        if missing:
            raise KeyError(f"{path}: missing {missing}")
        pca = LandmarkPCA(
            mean=z["mean"].astype(np.float32),
            components=z["components"].astype(np.float32),
            explained_variance=z["explained_variance"].astype(np.float32),
            crop_size=int(z["crop_size"]),
        )
    k = pca.components.shape[0]
    if pca.mean.shape != (2 * N_POINTS,) or pca.components.shape != (k, 2 * N_POINTS) or pca.explained_variance.shape != (k,):
        raise ValueError(f"{path}: inconsistent shapes {pca.mean.shape}, {pca.components.shape}, {pca.explained_variance.shape}")
    return pca


def from_dict(d: dict) -> LandmarkPCA:
    """A LandmarkPCA from a dict of arrays or tensors with the `pca.npz` keys (e.g. the copy inside a checkpoint)."""
    def arr(v) -> np.ndarray:
        return np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32)

    return LandmarkPCA(arr(d["mean"]), arr(d["components"]), arr(d["explained_variance"]), int(d["crop_size"]))


# -- the store's pca.npz ------------------------------------------------------------------------------------------


MAX_PCA_FRAMES = 500_000  # 272 MB of landmarks; LRW's train split has about 14 M frames


def store_landmarks(store_dir: Path, split: str = "train", max_frames: int = MAX_PCA_FRAMES) -> tuple[np.ndarray, int]:
    """The landmarks of a store split's ok clips: (float32 (N, 68, 2) crop pixels, crop_size).

    All frames when the split has at most `max_frames`; otherwise every stride-th frame of each clip, stride =
    ceil(total / max_frames), so memory stays bounded on full corpora and the choice is deterministic.
    Reads `manifest.parquet` and each clip's rows of `shards/<shard>.zarr/landmarks`. Raises ValueError when the split
    has no ok clip or the clips disagree on crop_size.
    """
    from storage import manifest, shards

    store_dir = location.as_path(store_dir)
    rows = manifest.read(store_dir / "manifest.parquet")
    rows = rows[(rows["status"] == manifest.OK) & (rows["split"] == split)].sort_values("clip_id")
    if rows.empty:
        raise ValueError(f"{store_dir}: no ok clip in split {split!r}")
    sizes = rows["crop_size"].unique()
    if len(sizes) != 1:
        raise ValueError(f"{store_dir}: clips of split {split!r} disagree on crop_size: {sorted(sizes)}")
    stride = max(1, -(-int(rows["n_frames"].sum()) // max_frames))
    parts = []
    for shard, clips in rows.groupby("shard", sort=True):
        landmarks = shards.open_shard(store_dir, shard)["landmarks"]
        lo, hi = int(clips["frame_start"].min()), int((clips["frame_start"] + clips["n_frames"]).max())
        block = landmarks[lo:hi]  # one read per shard, then slice each clip out of it
        parts += [block[s - lo : s - lo + n : stride] for s, n in zip(clips["frame_start"], clips["n_frames"])]
    return np.concatenate(parts).astype(np.float32), int(sizes[0])


def fit_store_pca(store_dir: Path, split: str = "train") -> LandmarkPCA:
    """Fit the ATVGnet landmark PCA on a store split's ok landmarks (see `store_landmarks`, `fit_landmark_pca`)."""
    landmarks, crop_size = store_landmarks(store_dir, split)
    return fit_landmark_pca(landmarks, crop_size)


def write_store_pca(store_dir: Path) -> Path:
    """Fit on the store's train split and write `<store_dir>/pca.npz` (the build calls this last). Returns the path."""
    return save(fit_store_pca(store_dir, "train"), location.as_path(store_dir) / "pca.npz")
