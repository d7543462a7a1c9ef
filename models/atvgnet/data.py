"""ATVGnet's training samples (Chen et al. CVPR 2019; public code `code/dataset.py`, `code/demo.py`) from a store.

Audio input: for video frame t the window `mfcc[4(t-3) : 4(t+4), 1:]`, float32 (28, 12) = 0.28 s centred on t, c0
dropped. 4 MFCC frames per video frame because 100 Hz / 25 fps = 4. Rows before the clip's first or after its last
MFCC frame repeat the edge row.

VG-net samples (`VGNetDataset`): T consecutive aligned face crops of one clip as targets, their ground-truth
landmarks (the decoupled training of the paper: VG-net learns from real landmarks, AT-net's are used only at
inference) and one example frame of the same clip, faces in [-1, 1] and landmarks normalised as
`storage.landmark_pca.normalise` does (crop pixels / crop_size * 2 - 1).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from storage.dataset import MFCC_PER_FRAME, ClipWindowDataset, faces_to_tensor
from storage.landmark_pca import LandmarkPCA
from storage.landmark_pca import load as load_pca, normalise

WINDOW_BEFORE, WINDOW_AFTER = 3, 4  # video frames: the window covers [t-3, t+4) -> 7 * 4 = 28 MFCC rows


def mfcc_windows(mfcc: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """ATVGnet MFCC windows: mfcc float (A, 13) at 100 Hz, frames int (n,) video frame indices -> float32 (n, 28, 12).

    Window for frame t = `mfcc[4(t-3) : 4(t+4), 1:]` with out-of-range rows replaced by the nearest edge row.
    Raises ValueError when mfcc is not (A >= 1, 13).
    """
    if mfcc.ndim != 2 or mfcc.shape[1] != 13 or len(mfcc) == 0:
        raise ValueError(f"mfcc must be (A >= 1, 13), got {mfcc.shape}")
    offsets = np.arange(-WINDOW_BEFORE * MFCC_PER_FRAME, WINDOW_AFTER * MFCC_PER_FRAME)  # -12 .. 15
    rows = np.clip(MFCC_PER_FRAME * np.asarray(frames)[:, None] + offsets[None, :], 0, len(mfcc) - 1)  # (n, 28)
    return np.ascontiguousarray(mfcc[rows, 1:], dtype=np.float32)



class ATNetDataset(ClipWindowDataset):
    """AT-net training samples from a store split (`ClipWindowDataset` windows).

    Item i is a dict of float32 tensors (Chen et al. CVPR 2019, Sec. 3.1; public code `GRID_1D_lstm_landmark_pca`):
      example_landmarks (6,): PCA coefficients of the example frame (one frame of the same clip);
      mfcc (T, 28, 12): `mfcc_windows` for the window's T frames;
      landmarks (T, 6): PCA coefficients of the window's T frames (the targets).

    pca: the LandmarkPCA to project with; default `<store_dir>/pca.npz` (FileNotFoundError when absent).
    cache_clips: clips' arrays (PCA coefficients and MFCC, ~50 kB for a 3 s clip) each process keeps.
    """

    def __init__(self, store_dir: Path, split: str = "train", *, pca: LandmarkPCA | None = None, T: int = 16,
                 stride: int = 1, seed: int = 0, cache_clips: int = 512):
        super().__init__(store_dir, split, T=T, stride=stride, seed=seed, cache_clips=cache_clips)
        self.pca = pca if pca is not None else load_pca(self.store_dir / "pca.npz")

    def read_clip(self, row) -> tuple[np.ndarray, np.ndarray]:
        """(PCA coefficients float32 (n_frames, 6), MFCC float32 (n_mfcc, 13)) of one clip."""
        return self.pca.to_pca(self.reader.landmarks(row)), self.reader.mfcc(row)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.windows[i]
        coeffs, mfcc = self.clip_arrays(w.clip)
        example = self.example_frame(i, len(coeffs))
        frames = np.arange(w.start, w.start + self.T)
        return {
            "example_landmarks": torch.from_numpy(coeffs[example].copy()),  # (6,)
            "mfcc": torch.from_numpy(mfcc_windows(mfcc, frames)),  # (T, 28, 12)
            "landmarks": torch.from_numpy(coeffs[frames].copy()),  # (T, 6)
        }


class VGNetDataset(ClipWindowDataset):
    """VG-net training samples from a store split (`ClipWindowDataset` windows).

    Item i is a dict of float32 tensors (Chen et al. CVPR 2019, Sec. 3.2; decoupled training on ground-truth
    landmarks, as the paper does):
      example_face (3, H, W) in [-1, 1]: the example frame (one frame of the same clip, drawn as `ATNetDataset`
                                        draws its example);
      example_landmarks (136,): that frame's landmarks, normalised (`storage.landmark_pca.normalise`: crop pixels /
                                crop_size * 2 - 1), flattened (x0, y0, x1, y1, ...);
      landmarks (T, 136): the window's ground-truth landmarks, normalised and flattened the same way;
      frames (T, 3, H, W) in [-1, 1]: the window's face crops, the targets.
    H = W = the store's crop size (128).

    cache_clips: clips' faces and landmarks each process keeps (a 3 s clip's 75 uint8 128x128 faces are 3.7 MB, so
    the default 16 holds ~60 MB).
    """

    def __init__(self, store_dir: Path, split: str = "train", *, T: int = 16, stride: int = 1, seed: int = 0,
                 cache_clips: int = 16):
        super().__init__(store_dir, split, T=T, stride=stride, seed=seed, cache_clips=cache_clips)

    def read_clip(self, row) -> tuple[np.ndarray, np.ndarray]:
        """(faces uint8 (n_frames, H, W, 3), normalised landmarks float32 (n_frames, 136)) of one clip."""
        faces = self.reader.faces(row)
        crop = int(row.crop_size) if not pd.isna(row.crop_size) else int(faces.shape[1])
        return faces, normalise(self.reader.landmarks(row), crop).reshape(len(faces), -1).astype(np.float32)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.windows[i]
        faces, landmarks = self.clip_arrays(w.clip)
        example = self.example_frame(i, len(faces))
        window = slice(w.start, w.start + self.T)
        return {
            "example_face": faces_to_tensor(faces[example]),  # (3, H, W)
            "example_landmarks": torch.from_numpy(landmarks[example].copy()),  # (136,)
            "landmarks": torch.from_numpy(landmarks[window].copy()),  # (T, 136)
            "frames": faces_to_tensor(faces[window]),  # (T, 3, H, W)
        }

