"""SyncNet's training samples (Chung & Zisserman, ACCV workshops 2016) from a store: 0.2 s windows of crops and
MFCC, genuine and off-sync pairs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from storage.dataset import MFCC_PER_FRAME, ClipWindowDataset

SYNC_FRAMES = 5  # video frames per SyncNet window: 0.2 s at 25 fps
SYNC_MFCC_ROWS = 20  # MFCC rows per SyncNet window: 0.2 s at 100 Hz


def sync_audio_windows(n_mfcc: int) -> int:
    """How many SyncNet audio windows (rows 4t .. 4t+20, t = 0, 1, ...) fit in a clip of n_mfcc MFCC rows."""
    return max(0, (int(n_mfcc) - SYNC_MFCC_ROWS) // MFCC_PER_FRAME + 1)


def sync_mfcc_window(mfcc: np.ndarray, t: int) -> np.ndarray:
    """The SyncNet audio window of video frame t: `mfcc[4t : 4t+20]` transposed, float32 (13, 20) (coefficients x
    time, as SyncNet's audio stream takes it). Raises ValueError when the window runs past the clip."""
    if t < 0 or MFCC_PER_FRAME * t + SYNC_MFCC_ROWS > len(mfcc):
        raise ValueError(f"audio window of frame {t} runs outside {len(mfcc)} MFCC rows")
    rows = mfcc[MFCC_PER_FRAME * t : MFCC_PER_FRAME * t + SYNC_MFCC_ROWS]
    return np.ascontiguousarray(rows.T, dtype=np.float32)


class SyncNetDataset(ClipWindowDataset):
    """SyncNet training samples from a store split: 5 consecutive crops with their own 0.2 s of audio (the positive
    pair) and the same crops' negative audio (Chung & Zisserman 2016: in-sync pairs from the data, off-sync
    pairs by shifting the audio).

    Window t of a clip covers video frames t .. t+4 and MFCC rows 4t .. 4t+20 (100 Hz MFCC, 25 fps video: 4 rows a
    frame, `sync_mfcc_window`); windows whose audio would run past the clip's MFCC are left out. Item i is window
    i mod W (W windows) with its negative drawn from `np.random.default_rng((seed, i))`, so each window has
    `draws_per_window` different negatives and every item is fixed per (seed, i):
      with probability `p_other_clip` (or when the clip has no valid shift) a random audio window of another clip of
      the split; otherwise the same clip's audio window t + s, s drawn uniformly from the shifts with
      min_shift <= |s| <= max_shift whose window lies inside the clip.

    Item i is a dict:
      video uint8 (5, H, W, 3): RGB crops, the store's `mouth` (64x64) or `face` (128x128) per `crop`;
      audio float32 (13, 20): the aligned MFCC window (c0 = log-energy, store scale);
      negative float32 (13, 20): the negative MFCC window;
      negative_shift int64 (): s in video frames, 0 when the negative comes from another clip;
      negative_clip int64 (): row in `self.clips` the negative's audio comes from.
    cache_clips: clips' crops and MFCC each process keeps (LRU; batches draw from every clip, so a cache smaller
    than the split re-reads shards often). A 3 s clip's mouths are 0.9 MB, its faces 3.7 MB.
    Raises ValueError on bad shift bounds or when no window fits.
    """

    def __init__(self, store_dir: Path, split: str = "train", *, crop: str = "mouth", stride: int = 1, seed: int = 0,
                 min_shift: int = 5, max_shift: int = 15, p_other_clip: float = 0.25, draws_per_window: int = 1,
                 cache_clips: int = 256):
        if crop not in ("mouth", "face"):
            raise ValueError(f"crop must be 'mouth' or 'face', got {crop!r}")
        if not 1 <= min_shift <= max_shift or not 0.0 <= p_other_clip <= 1.0 or draws_per_window < 1:
            raise ValueError(f"need 1 <= min_shift <= max_shift, 0 <= p_other_clip <= 1, draws_per_window >= 1; got "
                             f"{min_shift}, {max_shift}, {p_other_clip}, {draws_per_window}")
        super().__init__(store_dir, split, T=SYNC_FRAMES, stride=stride, seed=seed, cache_clips=cache_clips)
        self.crop, self.min_shift, self.max_shift = crop, min_shift, max_shift
        self.p_other_clip, self.draws_per_window = p_other_clip, draws_per_window
        self.n_audio = [sync_audio_windows(n) for n in self.clips["n_mfcc"]]
        self.windows = [w for w in self.windows if w.start < self.n_audio[w.clip]]
        if not self.windows:
            raise ValueError(f"{store_dir}: no clip of split {split!r} has a SyncNet window")

    def __len__(self) -> int:
        return len(self.windows) * self.draws_per_window

    def read_clip(self, row) -> tuple[np.ndarray, np.ndarray]:
        """(crops uint8 (n_frames, H, W, 3), MFCC float32 (n_mfcc, 13)) of one clip."""
        frames = self.reader.mouths(row) if self.crop == "mouth" else self.reader.faces(row)
        return frames, self.reader.mfcc(row)

    def negative(self, i: int) -> tuple[int, int, int]:
        """(clip row, audio window start, shift in frames; 0 for another clip) of item i's negative."""
        w = self.windows[i % len(self.windows)]
        rng = np.random.default_rng((self.seed, i))
        shifts = [s for s in range(-self.max_shift, self.max_shift + 1)
                  if abs(s) >= self.min_shift and 0 <= w.start + s < self.n_audio[w.clip]]
        others = [c for c in range(len(self.clips)) if c != w.clip and self.n_audio[c] > 0]
        other = rng.random() < self.p_other_clip
        if others and (other or not shifts):
            clip = others[int(rng.integers(len(others)))]
            return clip, int(rng.integers(self.n_audio[clip])), 0
        if not shifts:
            raise ValueError(f"window {w} has no negative: no shift in [{self.min_shift}, {self.max_shift}] fits "
                             f"and the split has no other clip")
        s = shifts[int(rng.integers(len(shifts)))]
        return w.clip, w.start + s, s

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        w = self.windows[i % len(self.windows)]
        frames, mfcc = self.clip_arrays(w.clip)
        clip, start, shift = self.negative(i)
        negative_mfcc = mfcc if clip == w.clip else self.clip_arrays(clip)[1]
        return {
            "video": torch.from_numpy(frames[w.start : w.start + SYNC_FRAMES].copy()),  # (5, H, W, 3) uint8
            "audio": torch.from_numpy(sync_mfcc_window(mfcc, w.start)),  # (13, 20)
            "negative": torch.from_numpy(sync_mfcc_window(negative_mfcc, start)),  # (13, 20)
            "negative_shift": torch.tensor(shift, dtype=torch.int64),
            "negative_clip": torch.tensor(clip, dtype=torch.int64),
        }
