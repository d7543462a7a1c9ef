"""Zheng et al. 2020's training samples from a store (ICPR; shared/specs/zheng2020.md §1–4, §6).

Word windows (`WordWindowDataset`: the word detector, the MI estimator and A2L): T = 25 consecutive frames centred
on one timed word of a clip, the paper's LRW sample (29 frames with the word in the middle; 25 of them). On GRID
[D] one window per `.align` word (six per sentence), on LRW one per clip; a window that would leave the clip is
moved inside it, clips shorter than T and clips whose words carry no timings (GRID names without an `.align`) give
none. Each window's word is its class in the store's vocabulary (`models.zheng.landmarks.vocabulary`).

Frame samples (`FrameDataset`: L2F): T consecutive frames (1 by default: the U-Net is per frame) with their
landmarks in crop pixels, an identity frame of the same clip, and the MFCC windows and reference landmarks that
A2L needs when L2F is fine-tuned on its predictions.

Audio input as ATVGnet (§IV-B): `models.atvgnet.data.mfcc_windows`, 28 MFCC rows × 12 coefficients per frame.
Landmarks as `models.zheng.landmarks` says: normalised x / 64 − 1 (128-px crops), flattened to 136.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.atvgnet.data import mfcc_windows
from models.zheng.landmarks import vocabulary as store_vocabulary
from storage.dataset import ClipWindowDataset, Window, faces_to_tensor
from storage.landmark_pca import normalise

T_WORD = 25  # frames per word window (the word detector's input, §III-A)


def word_windows(clips: pd.DataFrame, vocab: tuple[str, ...], T: int = T_WORD) -> list[tuple[int, int, int]]:
    """(clip row, first frame, word class) of every timed word of `clips` (manifest rows) whose word is in `vocab`:
    the T frames centred on the word's middle frame, shifted to lie inside the clip. Clips shorter than T, untimed
    words and words outside `vocab` give none. Sorted by clip row, then frame."""
    index = {w: i for i, w in enumerate(vocab)}
    out = []
    for c, row in enumerate(clips.itertuples(index=False)):
        n = int(row.n_frames)
        if n < T or not bool(row.words_timed):
            continue
        for w in row.words:
            if w["word"] not in index or pd.isna(w["start_frame"]) or pd.isna(w["end_frame"]):
                continue
            centre = (int(w["start_frame"]) + int(w["end_frame"])) // 2
            out.append((c, min(max(centre - T // 2, 0), n - T), index[w["word"]]))
    return out


def flat_landmarks(landmarks_px: np.ndarray, crop_size: int) -> np.ndarray:
    """float32 (..., 68, 2) crop pixels -> (..., 136) normalised (x / (crop / 2) − 1), x0, y0, x1, y1, … order."""
    landmarks_px = np.asarray(landmarks_px)
    return normalise(landmarks_px, crop_size).reshape(*landmarks_px.shape[:-2], 136).astype(np.float32)


def _crop_size(row, fallback: int = 128) -> int:
    return int(row.crop_size) if not pd.isna(row.crop_size) else fallback


class WordWindowDataset(ClipWindowDataset):
    """Word windows of a store split (module docstring). Item i is a dict of tensors:
      landmarks (T, 136) float32: the window's dlib landmarks, normalised (the targets; the detector's input);
      reference (136,) float32: the landmarks of the identity frame, one frame of the same clip, fixed per (seed, i)
                                 (l_ref, the identity image's landmarks);
      mfcc (T, 28, 12) float32: the window's MFCC windows (A);
      word () int64: the window's word class in `vocab`.

    vocab: the word classes (default: the store's, `models.zheng.landmarks.vocabulary`; a resumed or frozen
    detector passes its own so the classes keep their meaning). Raises ValueError when the split has no word
    window.
    """

    def __init__(self, store_dir: Path, split: str = "train", *, vocab: tuple[str, ...] | None = None,
                 T: int = T_WORD, seed: int = 0, cache_clips: int = 512):
        super().__init__(store_dir, split, T=T, stride=1, seed=seed, cache_clips=cache_clips)
        self.vocab = tuple(vocab) if vocab is not None else store_vocabulary(self.store_dir)
        found = word_windows(self.clips, self.vocab, T)
        if not found:
            raise ValueError(f"{store_dir}: no clip of split {split!r} has a timed word of the vocabulary in "
                             f"{T} frames")
        self.windows = [Window(c, s) for c, s, _ in found]
        self.words = np.array([w for _, _, w in found], np.int64)

    def read_clip(self, row) -> tuple[np.ndarray, np.ndarray]:
        """(normalised landmarks float32 (n_frames, 136), MFCC float32 (n_mfcc, 13)) of one clip."""
        return flat_landmarks(self.reader.landmarks(row), _crop_size(row)), self.reader.mfcc(row)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.windows[i]
        landmarks, mfcc = self.clip_arrays(w.clip)
        frames = np.arange(w.start, w.start + self.T)
        return {
            "landmarks": torch.from_numpy(landmarks[frames].copy()),  # (T, 136)
            "reference": torch.from_numpy(landmarks[self.example_frame(i, len(landmarks))].copy()),  # (136,)
            "mfcc": torch.from_numpy(mfcc_windows(mfcc, frames)),  # (T, 28, 12)
            "word": torch.tensor(self.words[i]),  # ()
        }


class FrameDataset(ClipWindowDataset):
    """L2F samples of a store split: windows of T frames (stride `stride`). Item i is a dict of float32 tensors:
      identity (3, H, W) in [-1, 1]: the identity frame (one frame of the same clip, fixed per (seed, i));
      frames (T, 3, H, W) in [-1, 1]: the target face crops;
      landmarks (T, 68, 2): their dlib landmarks in crop pixels (the heatmaps' centres and the lip crop's box);
      reference (136,): the identity frame's landmarks, normalised (A2L's l_ref, for fine-tuning on predictions);
      mfcc (T, 28, 12): the window's MFCC windows (the same).
    H = W = the store's face crop (128). cache_clips: clips whose faces each process keeps (3.7 MB per 3 s clip).
    """

    def __init__(self, store_dir: Path, split: str = "train", *, T: int = 1, stride: int = 1, seed: int = 0,
                 cache_clips: int = 16):
        super().__init__(store_dir, split, T=T, stride=stride, seed=seed, cache_clips=cache_clips)

    def read_clip(self, row) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(faces uint8 (n, H, W, 3), landmarks float32 (n, 68, 2) crop pixels, MFCC float32 (A, 13))."""
        return self.reader.faces(row), self.reader.landmarks(row), self.reader.mfcc(row)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.windows[i]
        faces, landmarks, mfcc = self.clip_arrays(w.clip)
        identity = self.example_frame(i, len(faces))
        window = np.arange(w.start, w.start + self.T)
        return {
            "identity": faces_to_tensor(faces[identity]),  # (3, H, W)
            "frames": faces_to_tensor(faces[window]),  # (T, 3, H, W)
            "landmarks": torch.from_numpy(landmarks[window].copy()),  # (T, 68, 2)
            "reference": torch.from_numpy(flat_landmarks(landmarks[identity], faces.shape[1])),  # (136,)
            "mfcc": torch.from_numpy(mfcc_windows(mfcc, window)),  # (T, 28, 12)
        }
