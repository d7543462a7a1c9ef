"""The lip reader's input and training samples (LipNet, Assael et al. 2016; shared/specs/vougioukas2019-sda.md §8).

The input is a FIXED mouth box of the store's aligned 128×128 `face` crop: centred on the mean position of dlib
points 48–67 over the train split (`mouth_box`; the store's landmarks are in face-crop pixels), the same box for
every clip, real or generated, so a generator's frames are read exactly as the ground truth is. The box's pixels are
resized to the network's input size and optionally turned grey (`mouth_frames`). A trained stage keeps the box in
its checkpoint (`stages.LipReaderStage.extra_state`, "mouth_box"), and `reader.LipReader` cuts the same one.

`LipReadingDataset`: one item per ok clip of a split, the whole clip zero-padded to the split's longest (or a cap),
with its transcript (the manifest's `text`: GRID's words without sil/sp) as CTC target; like
`models.sda.data.UtteranceDataset`. `held_out_clips` holds sentences of the training speakers out of training
(LipNet's "overlapped speakers" protocol, Assael et al. 2016 §4: its 255 held-out sentences per speaker), so a
reader trained on one speaker can still be scored on sentences it never saw.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from models.lipreader.text import encode, normalize
from storage import location
from storage.crops import CROPS
from storage.dataset import ClipWindowDataset, ok_clips, ClipReader

MOUTH_POINTS = list(CROPS["mouth"].points)  # dlib 48-67: outer and inner lip contours
WHOLE_CLIPS = 10**9  # a window stride longer than any clip: one window, the whole clip, per clip
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 grey


class MouthBox(NamedTuple):
    """A box of the face crop in pixels: rows y0 .. y0 + h, columns x0 .. x0 + w."""

    y0: int
    x0: int
    h: int
    w: int

    def cut(self, faces: np.ndarray) -> np.ndarray:
        """faces uint8 (..., H, W, 3) -> the box uint8 (..., h, w, 3) (a view)."""
        return faces[..., self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w, :]


def mouth_box(store_dir: Path, split: str = "train", size: tuple[int, int] = (32, 64)) -> MouthBox:
    """The fixed mouth box of size (h, w) pixels of the store's `face` crop, centred on the mean (x, y) of points
    48–67 over every frame of the split's ok clips (rounded to whole pixels), shifted inside the crop where it would
    cross an edge. Reads each shard's landmarks once. Raises ValueError when the box is larger than the crop or the
    split has no ok clip (store.IncompleteStoreError for an incomplete store)."""
    clips = ok_clips(location.as_path(store_dir), split)
    reader = ClipReader(location.as_path(store_dir))
    total, count = np.zeros(2), 0
    for shard, rows in clips.groupby("shard"):
        landmarks = np.asarray(reader.group(shard)["landmarks"][:], dtype=np.float64)[:, MOUTH_POINTS]  # (N, 20, 2)
        frame_h, frame_w = reader.group(shard)["face"].shape[1:3]
        for row in rows.itertuples():
            s = int(row.frame_start)
            pts = landmarks[s : s + int(row.n_frames)].reshape(-1, 2)  # (x, y)
            pts = pts[np.isfinite(pts).all(axis=1)]
            total += pts.sum(axis=0)
            count += len(pts)
    if count == 0:
        raise ValueError(f"{store_dir}: split {split!r} has no finite mouth landmarks")
    h, w = (int(v) for v in size)
    if not (0 < h <= frame_h and 0 < w <= frame_w):
        raise ValueError(f"a {h}x{w} mouth box does not fit the {frame_h}x{frame_w} face crop")
    cx, cy = total / count
    y0 = int(np.clip(round(cy - h / 2), 0, frame_h - h))
    x0 = int(np.clip(round(cx - w / 2), 0, frame_w - w))
    return MouthBox(y0, x0, h, w)


def mouth_frames(boxes: np.ndarray | torch.Tensor, size: tuple[int, int], channels: int) -> torch.Tensor:
    """The network input of cut mouth boxes: uint8 (N, h, w, 3) RGB -> float32 (N, channels, H, W) in [-1, 1],
    (H, W) = size (bilinear with antialiasing when the box is another size), grey (BT.601 luma) when channels is 1."""
    x = torch.as_tensor(np.ascontiguousarray(boxes)).movedim(-1, -3).to(torch.float32)  # (N, 3, h, w), 0..255
    if channels == 1:  # grey first: both steps are linear, and one channel resizes faster than three
        x = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)  # (N, 1, h, w)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return (x / 127.5 - 1.0).clamp_(-1.0, 1.0).contiguous()


def held_out_clips(clip_ids, fraction: float) -> frozenset[str]:
    """The clips of `clip_ids` held out of the reader's training: those whose sha256 of "lipreader-held-out/<clip_id>"
    maps below `fraction` in [0, 1) (the same clips on every machine, independent of the speaker split's hash;
    about `fraction` of them). Raises ValueError for a fraction outside [0, 1)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction}")
    key = lambda c: int(hashlib.sha256(f"lipreader-held-out/{c}".encode()).hexdigest()[:8], 16) / 2**32  # noqa: E731
    return frozenset(c for c in clip_ids if key(c) < fraction)


class LipReadingDataset(ClipWindowDataset):
    """Whole clips of a store split with their transcripts, item i a dict of tensors:

      video float32 (T, C, H, W): the clip's mouth boxes (`box`) as `mouth_frames` makes them, zeros past its length;
      length int64 (): its frames (at most T);
      target int64 (L,): `text.encode` of its manifest text (1..27), zeros past target_length;
      target_length int64 ().
    T = max_frames, or the split's longest ok clip when None (a longer clip is cut to T frames, its target kept whole:
    leave max_frames None unless every clip fits). L = the split's longest transcript. box: the mouth box (None: the
    train split's, `mouth_box(store_dir, "train", box_size)`); `face_size`: (H, W) of the store's face crop it is in.
    mirror: the dataset is twice as long, items n … 2n - 1 the clips flipped left to right (LipNet's augmentation),
    deterministically.
    held_out, part: with held_out > 0, `held_out_clips(split's clips, held_out)` are set aside: part "kept" reads the
    others (training), "held_out" only those (scoring).
    Raises ValueError when the split (or the part) has no ok clip or a transcript is empty or outside the alphabet
    (naming it).
    """

    def __init__(self, store_dir: Path, split: str = "train", *, size: tuple[int, int] = (32, 64), channels: int = 3,
                 box: MouthBox | None = None, box_size: tuple[int, int] = (32, 64), max_frames: int | None = None,
                 mirror: bool = False, seed: int = 0, cache_clips: int = 512, held_out: float = 0.0,
                 part: Literal["kept", "held_out"] = "kept"):
        ids = None
        if held_out or part == "held_out":
            every = frozenset(ok_clips(location.as_path(store_dir), split)["clip_id"])
            out = held_out_clips(every, held_out)
            ids = every - out if part == "kept" else out
        super().__init__(store_dir, split, T=1, stride=WHOLE_CLIPS, seed=seed, cache_clips=cache_clips,
                         clip_ids=ids)
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        longest = int(self.clips["n_frames"].max())
        self.T = min(longest, max_frames) if max_frames else longest
        self.box = MouthBox(*box) if box is not None else mouth_box(store_dir, "train", box_size)
        self.face_size = tuple(int(v) for v in self.reader.group(self.clips["shard"].iloc[0])["face"].shape[1:3])
        self.size, self.channels, self.mirror = tuple(size), channels, mirror
        self.texts = [normalize(t or "") for t in self.clips["text"]]
        for clip_id, text in zip(self.clips["clip_id"], self.texts):
            if not text:
                raise ValueError(f"{store_dir}: clip {clip_id} has no transcript (the lip reader trains on GRID)")
            try:
                encode(text)
            except ValueError as e:
                raise ValueError(f"{store_dir}: clip {clip_id}: {e}") from None
        self.L = max(len(t) for t in self.texts)

    def __len__(self) -> int:
        return len(self.windows) * (2 if self.mirror else 1)

    def read_clip(self, row) -> tuple[np.ndarray]:
        """(mouth boxes uint8 (n, h, w, 3),) of a clip, n = min(n_frames, T)."""
        return (np.ascontiguousarray(self.box.cut(self.reader.faces(row)[: self.T])),)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n_clips = len(self.windows)
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} of {len(self)}")
        clip = self.windows[i % n_clips].clip
        (boxes,) = self.clip_arrays(clip)
        if i >= n_clips:
            boxes = boxes[:, :, ::-1]  # mirrored: W axis reversed
        n = len(boxes)
        video = torch.zeros(self.T, self.channels, *self.size)
        video[:n] = mouth_frames(boxes, self.size, self.channels)
        text = encode(self.texts[clip])
        target = torch.zeros(self.L, dtype=torch.int64)
        target[: len(text)] = text
        return {"video": video, "length": torch.tensor(n), "target": target,
                "target_length": torch.tensor(len(text))}
