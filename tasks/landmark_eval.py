"""Landmark error of a trained AT-net on a store split (pure: no Prefect, no MLflow).

For each ok clip of the split: example landmarks = the clip's first frame (PCA coefficients), MFCC windows for all of
its frames (`models.atvgnet.data.mfcc_windows`), one AT-net pass over the whole clip (the LSTM runs over all n frames, as
the public `demo.py` does), coefficients -> crop-pixel landmarks with the checkpoint's PCA, with and without the
paper's boost omega (`storage.landmark_pca.BOOST`).

LMD (landmark distance; Chen et al. ECCV 2018, CVPR 2019): per frame, mean-centre the predicted and the true mouth
points 48-67 separately (removing the global offset), take the Euclidean distance of each point pair, in crop pixels
(128-pixel crops here); the one implementation is `tasks.metrics.landmarks`. `lmd_mouth` is the mean over the 20
points and all frames: the form the papers describe.
The public evaluation code sums over the 20 points instead: `lmd_mouth_sum20` = 20 x `lmd_mouth`, reported for
comparison with numbers computed that way. `lmd_all68` is the same with all 68 points (centred on all 68).

Differences from the papers' LMD, which detects landmarks with dlib on generated video frames: here AT-net's
landmarks are scored directly against the store's dlib landmarks (no VG-net, no re-detection), so this measures the
audio-to-landmark stage alone. Two references come with it:
  `pca_ceiling` - ground truth through to_pca -> from_pca: the error the 6-component PCA alone causes, a floor no
                  AT-net can beat;
  `static`      - the example (first-frame) landmarks repeated for every frame: a model that ignores the audio.

Aggregates are means over all frames of the split (clips weighted by their frame count).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.atvgnet.at_net import ATNet
from models.atvgnet.data import mfcc_windows
from models.atvgnet.inference import load_atnet
from storage.dataset import ClipReader, ok_clips
from storage.landmark_pca import LandmarkPCA
from tasks.checkpoint import resolve_device
from tasks.metrics.landmarks import lmd_per_frame

MOUTH = slice(48, 68)  # dlib points 48-67: outer and inner lip contour
N_MOUTH = 20


def landmark_distance(pred: np.ndarray, true: np.ndarray, points: slice = MOUTH) -> np.ndarray:
    """Per-frame LMD, the papers' mean form: pred, true float (n, 68, 2) crop pixels -> float64 (n,)
    (`tasks.metrics.landmarks.lmd_per_frame`, the project's one implementation). Raises ValueError on mismatched shapes.
    """
    return lmd_per_frame(pred, true, points, reduce="mean")


@torch.no_grad()
def predict_coefficients(model: ATNet, example_coeffs: np.ndarray, mfcc: np.ndarray, n_frames: int) -> np.ndarray:
    """AT-net over a whole clip: example_coeffs float (6,), mfcc float (A, 13) at 100 Hz -> float32 (n_frames, 6)."""
    device = next(model.parameters()).device
    windows = torch.from_numpy(mfcc_windows(mfcc, np.arange(n_frames)))[None].to(device)  # (1, n, 28, 12)
    example = torch.as_tensor(example_coeffs, dtype=torch.float32)[None].to(device)  # (1, 6)
    return model(example, windows)[0].float().cpu().numpy()  # (n, 6)


def score_clip(model: ATNet, pca: LandmarkPCA, landmarks: np.ndarray, mfcc: np.ndarray) -> dict[str, float]:
    """All metrics of one clip: landmarks float32 (n, 68, 2) crop pixels, mfcc float32 (A, 13). Means over frames."""
    n = len(landmarks)
    example = pca.to_pca(landmarks[0])  # (6,)
    coeffs = predict_coefficients(model, example, mfcc, n)  # (n, 6)
    predictions = {
        "": pca.from_pca(coeffs),
        "_boost": pca.from_pca(coeffs, boost=True),
        "_pca_ceiling": pca.from_pca(pca.to_pca(landmarks)),
        "_static": np.broadcast_to(landmarks[0], landmarks.shape),
    }
    out: dict[str, float] = {}
    for suffix, pred in predictions.items():
        out[f"lmd_mouth{suffix}"] = float(landmark_distance(pred, landmarks, MOUTH).mean())
        out[f"lmd_all68{suffix}"] = float(landmark_distance(pred, landmarks, slice(0, 68)).mean())
    out["lmd_mouth_sum20"] = N_MOUTH * out["lmd_mouth"]
    out["lmd_mouth_boost_sum20"] = N_MOUTH * out["lmd_mouth_boost"]
    return out


def evaluate_atnet(
    checkpoint: Path, store_dir: Path, split: str = "test", device: str = "auto"
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score an AT-net checkpoint (or a model directory's atnet.pt) on every ok clip of `store_dir`'s `split`.

    Returns (per-clip DataFrame with clip_id, speaker, n_frames and the metric columns of `score_clip`,
    aggregate dict: each metric's frame-weighted mean, plus n_clips, n_frames, step). Distances in crop pixels.
    The checkpoint's own PCA is used (the basis the model was trained in), not the evaluated store's pca.npz.
    Raises ValueError when the split has no ok clip, or the store's crop size differs from the checkpoint's PCA.
    """
    model, pca, ckpt = load_atnet(checkpoint, resolve_device(device))
    clips = ok_clips(store_dir, split)
    sizes = set(clips["crop_size"].astype(int))
    if sizes != {pca.crop_size}:
        raise ValueError(f"{store_dir}: crop sizes {sorted(sizes)} differ from the checkpoint PCA's {pca.crop_size}")
    reader = ClipReader(store_dir)
    rows = []
    for row in clips.itertuples(index=False):
        metrics = score_clip(model, pca, reader.landmarks(row), reader.mfcc(row))
        rows.append({"clip_id": row.clip_id, "speaker": row.speaker, "n_frames": int(row.n_frames), **metrics})
    per_clip = pd.DataFrame(rows)
    metric_cols = [c for c in per_clip.columns if c.startswith("lmd_")]
    weights = per_clip["n_frames"].to_numpy(dtype=np.float64)
    aggregate = {c: float(np.average(per_clip[c], weights=weights)) for c in metric_cols}
    aggregate.update(n_clips=float(len(per_clip)), n_frames=float(weights.sum()), step=float(ckpt["step"]))
    return per_clip, aggregate
