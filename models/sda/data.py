"""The training samples of Vougioukas et al. 2019 (IJCV, Sec. 3.1 and 4; shared/specs/vougioukas2019-sda.md §1, §5)
from a store: whole utterances of its `face_sda` crops (128×96, points 33/36/39/42/45 onto a mean face, 7-frame
smoothing; DESIGN) with 0.2 s raw-audio windows centred on each frame (`generator.audio_windows`).

One item per ok clip of the split, zero-padded to the split's longest clip (`max_frames`, or a cap) so the loop's
default collation stacks them, with its length for the packed GRUs and the padded losses. With `mirror`, the
dataset is twice as long: items n … 2n - 1 are the clips mirrored left to right (the paper's augmentation), so
every clip is seen both ways, deterministically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.sda.generator import WINDOW, audio_windows
from storage.dataset import ClipWindowDataset, faces_to_tensor

WHOLE_CLIPS = 10**9  # a window stride longer than any clip: one window, the whole clip, per clip


class UtteranceDataset(ClipWindowDataset):
    """Whole clips of a store split, item i a dict of tensors:

      video float32 (T, 3, H, W): the clip's `face_sda` frames in [-1, 1], zeros past its length;
      still float32 (3, H, W): its first frame, the identity x_1 (P Eq. 2);
      audio float32 (T, 3200): `audio_windows` of its 16 kHz audio, zeros past its length;
      length int64 (): its frames (at most T).
    T = max_frames, or the longest ok clip of the split when None; longer clips are cut to their first T frames.
    mirror: also each clip flipped left to right (items n … 2n - 1), its audio unchanged.
    crop: the store crop read ("face_sda"). Raises ValueError when the split has no ok clip; reading a store built
    without the crop raises KeyError (the train flow's `require_fields` refuses such a store before training).
    """

    def __init__(self, store_dir: Path, split: str = "train", *, max_frames: int | None = None, mirror: bool = True,
                 crop: str = "face_sda", seed: int = 0, cache_clips: int = 16):
        super().__init__(store_dir, split, T=1, stride=WHOLE_CLIPS, seed=seed, cache_clips=cache_clips)
        longest = int(self.clips["n_frames"].max())
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.T = min(longest, max_frames) if max_frames else longest
        self.mirror, self.crop = mirror, crop

    def __len__(self) -> int:
        return len(self.windows) * (2 if self.mirror else 1)

    def read_clip(self, row) -> tuple[np.ndarray, np.ndarray]:
        """(frames uint8 (n, H, W, 3), audio windows float32 (n, 3200)) of a clip, n = min(n_frames, T)."""
        frames = self.reader.crops(row, self.crop)[: self.T]
        return frames, audio_windows(self.reader.audio(row), len(frames))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n_clips = len(self.windows)
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} of {len(self)}")
        frames, windows = self.clip_arrays(self.windows[i % n_clips].clip)
        if i >= n_clips:
            frames = frames[:, :, ::-1]  # mirrored: W axis reversed
        n, (h, w) = len(frames), frames.shape[1:3]
        video = torch.zeros(self.T, 3, h, w)
        video[:n] = faces_to_tensor(frames)  # (n, 3, H, W)
        audio = torch.zeros(self.T, WINDOW)
        audio[:n] = torch.from_numpy(windows)
        return {"video": video, "still": video[0].clone(), "audio": audio, "length": torch.tensor(n)}
