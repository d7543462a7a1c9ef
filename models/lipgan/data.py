"""The lip GAN's training samples (Chen et al. ECCV 2018, Sec. 5.1; `../shared/specs/chen2018-lipgan.md` §1) from a
store: its `mouth` crops (DESIGN: square of 1.3× the lips' box, the paper's protocol) and log-mel windows of its
16 kHz audio.

Audio: `storage.audio.log_mel` of the whole clip (100 Hz, 128 mels; mel frame m belongs to video frame m // 4),
z-scored per mel band with the train split's statistics (`mel_statistics`, kept with the model so inference
normalises the same way). The window of a T-frame sample starting at video frame t0 is the rows
[4·t0, 4·(t0 + T)) → float32 (1, 4T, n_mels); the store's audio may end up to one video frame before its video
(DESIGN), so rows past the end repeat the last one.

Frames: uint8 mouth crops resized (area) to the stage's image size when it differs from the store's 64, then
RGB in [-1, 1] (`storage.dataset.faces_to_tensor`); a clip is (3, T, S, S) = (C, T, H, W).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from models.lipgan.flow import farneback_flow
from storage import audio as audio_features
from storage.dataset import ClipReader, ClipWindowDataset, faces_to_tensor, ok_clips
from storage.audio import MELS_PER_VIDEO_FRAME


def mel_window(mel: np.ndarray, start: int, T: int) -> np.ndarray:
    """Rows [4·start, 4·(start + T)) of a log-mel (M, n_mels), rows past the end repeating the last one:
    float32 (4T, n_mels). Raises ValueError for an empty spectrogram or a negative start."""
    if len(mel) == 0 or start < 0:
        raise ValueError(f"need a non-empty log-mel and start >= 0, got {mel.shape} and start {start}")
    rows = np.minimum(np.arange(MELS_PER_VIDEO_FRAME * start, MELS_PER_VIDEO_FRAME * (start + T)), len(mel) - 1)
    return np.ascontiguousarray(mel[rows], dtype=np.float32)


def mel_statistics(store_dir: Path, split: str = "train", n_mels: int = audio_features.N_MELS) -> dict[str, np.ndarray]:
    """Per-band mean and standard deviation of the log-mel (dB) frames of a split's ok clips:
    {"mean": float32 (n_mels,), "std": float32 (n_mels,)} (std floored at 1e-3 dB). Raises ValueError when the split
    has no ok clip."""
    reader = ClipReader(store_dir)
    total, total_sq, n = np.zeros(n_mels), np.zeros(n_mels), 0
    for row in ok_clips(store_dir, split).itertuples(index=False):
        mel = audio_features.log_mel(reader.audio(row), n_mels=n_mels).astype(np.float64)
        total += mel.sum(0)
        total_sq += (mel**2).sum(0)
        n += len(mel)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    return {"mean": mean.astype(np.float32), "std": np.maximum(std, 1e-3).astype(np.float32)}


def normalise_mel(mel: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """(mel - mean) / std per band: float32 (M, n_mels)."""
    return ((mel - stats["mean"]) / stats["std"]).astype(np.float32)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, h, w, 3) -> uint8 (N, size, size, 3), area interpolation; unchanged when already that size."""
    if frames.shape[1:3] == (size, size):
        return frames
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return out


def clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, S, S, 3) RGB -> float32 (3, T, S, S) in [-1, 1]."""
    return faces_to_tensor(frames).permute(1, 0, 2, 3).contiguous()


class MouthFrameDataset(ClipWindowDataset):
    """Single mouth frames of a store split, for the perceptual autoencoder (spec §5): item i = {"mouth": float32
    (3, S, S) in [-1, 1]}, every frame of every ok clip once (windows of 1 frame, stride 1).
    image_size: S (the store's crops are 64; smaller sizes are resized)."""

    def __init__(self, store_dir: Path, split: str = "train", *, image_size: int = 64, seed: int = 0,
                 cache_clips: int = 64):
        super().__init__(store_dir, split, T=1, stride=1, seed=seed, cache_clips=cache_clips)
        self.image_size = image_size

    def read_clip(self, row) -> tuple[np.ndarray]:
        return (resize_frames(self.reader.mouths(row), self.image_size),)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.windows[i]
        (mouths,) = self.clip_arrays(w.clip)
        return {"mouth": faces_to_tensor(mouths[w.start])}  # (3, S, S)


class MouthFlowDataset(ClipWindowDataset):
    """Windows of T mouth frames with their Farneback flow, for training the flow net F (spec §4, option 1): item
    i = {"video": float32 (3, T, S, S) in [-1, 1], "flow": float32 (2, T-1, S/4, S/4)} (`flow.farneback_flow` of
    the resized frames: x, y in pixels of the quarter-resolution grid). A clip's flow is computed once per process
    and cached with its frames."""

    def __init__(self, store_dir: Path, split: str = "train", *, T: int = 16, stride: int = 8, image_size: int = 64,
                 seed: int = 0, cache_clips: int = 64):
        super().__init__(store_dir, split, T=T, stride=stride, seed=seed, cache_clips=cache_clips)
        self.image_size = image_size

    def read_clip(self, row) -> tuple[np.ndarray, np.ndarray]:
        """(mouths uint8 (n_frames, S, S, 3), flow float32 (n_frames - 1, 2, S/4, S/4)) of one clip."""
        mouths = resize_frames(self.reader.mouths(row), self.image_size)
        return mouths, farneback_flow(mouths)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.windows[i]
        mouths, flow = self.clip_arrays(w.clip)
        return {"video": clip_tensor(mouths[w.start : w.start + self.T]),  # (3, T, S, S)
                "flow": torch.from_numpy(flow[w.start : w.start + self.T - 1]).transpose(0, 1).contiguous()}


class LipGANDataset(ClipWindowDataset):
    """The GAN's samples (spec §1): windows of T mouth frames (T 16, stride 8) of a store split.

    Item i is a dict of float32 tensors:
      video (3, T, S, S): the window's mouths in [-1, 1] (the target v);
      identity (3, S, S): the identity image p_r, one frame of the same clip (fixed per (seed, i); it may fall in
          the window, as in the authors' code);
      audio (1, 4T, n_mels): the window's z-scored log-mel rows (s);
      mismatch_audio (1, 4T, n_mels): the log-mel of another window (the discriminator's mismatched pair, P Eq. 4),
          drawn per (seed, i) among the windows that share no frame with window i (another clip, or frames apart).
      flow (2, T-1, S/4, S/4), with_flow only: the window's Farneback flow (`flow.farneback_flow`), the real
          clip's motion for the spec's option 2.
    stats: the train split's `mel_statistics` (the model keeps them). Raises ValueError when the split has no ok
    clip of T frames, or no window shares no frame with another (a mismatched pair needs two).
    """

    def __init__(self, store_dir: Path, split: str = "train", *, stats: dict[str, np.ndarray], T: int = 16,
                 stride: int = 8, image_size: int = 64, n_mels: int = audio_features.N_MELS, seed: int = 0,
                 cache_clips: int = 64, with_flow: bool = False):
        super().__init__(store_dir, split, T=T, stride=stride, seed=seed, cache_clips=cache_clips)
        self.stats, self.image_size, self.n_mels, self.with_flow = stats, image_size, n_mels, with_flow
        if len(self.windows) < 2 or all(self._overlaps(0, j) for j in range(len(self.windows))):
            raise ValueError(f"{store_dir}: split {split!r} has no two windows of {T} frames without a shared "
                             f"frame (a mismatched audio pair needs them)")

    def read_clip(self, row) -> tuple[np.ndarray, ...]:
        """(mouths uint8 (n_frames, S, S, 3), z-scored log-mel float32 (M, n_mels)[, flow float32 (n_frames - 1, 2,
        S/4, S/4) with_flow]) of one clip."""
        mel = audio_features.log_mel(self.reader.audio(row), n_mels=self.n_mels)
        mouths = resize_frames(self.reader.mouths(row), self.image_size)
        return (mouths, normalise_mel(mel, self.stats)) + ((farneback_flow(mouths),) if self.with_flow else ())

    def _overlaps(self, i: int, j: int) -> bool:
        a, b = self.windows[i], self.windows[j]
        return a.clip == b.clip and abs(a.start - b.start) < self.T

    def mismatched_window(self, i: int) -> int:
        """The window whose audio is item i's mismatched pair: uniform over the windows sharing no frame with
        window i, fixed per (seed, i)."""
        rng = np.random.default_rng((self.seed, i, 1))
        for j in rng.permutation(len(self.windows)):
            if not self._overlaps(i, int(j)):
                return int(j)
        raise ValueError(f"window {i} shares frames with every other window")

    def audio_window(self, i: int) -> torch.Tensor:
        """float32 (1, 4T, n_mels): window i's z-scored log-mel rows."""
        w = self.windows[i]
        mel = self.clip_arrays(w.clip)[1]
        return torch.from_numpy(mel_window(mel, w.start, self.T)).unsqueeze(0)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.windows[i]
        arrays = self.clip_arrays(w.clip)
        mouths = arrays[0]
        identity = self.example_frame(i, len(mouths))
        item = {
            "video": clip_tensor(mouths[w.start : w.start + self.T]),  # (3, T, S, S)
            "identity": faces_to_tensor(mouths[identity]),  # (3, S, S)
            "audio": self.audio_window(i),  # (1, 4T, n_mels)
            "mismatch_audio": self.audio_window(self.mismatched_window(i)),  # (1, 4T, n_mels)
        }
        if self.with_flow:
            item["flow"] = torch.from_numpy(arrays[2][w.start : w.start + self.T - 1]).transpose(0, 1).contiguous()
        return item
