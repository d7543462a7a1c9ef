"""Reading a store for training: clip reader, ATVGnet MFCC windows, the AT-net and VG-net torch Datasets, DataLoader.

Store layout and field meanings: DESIGN "The store" and `storage.manifest`. Per clip, the manifest gives
`shard, frame_start, n_frames` (rows of the shard's per-frame arrays at 25 fps) and `mfcc_start, n_mfcc` (rows of the
shard's `mfcc` float32 (A, 13) at 100 Hz, c0 = log-energy).

ATVGnet audio input (Chen et al. CVPR 2019; public code `code/dataset.py`, `code/demo.py`): for video frame t the
window `mfcc[4(t-3) : 4(t+4), 1:]`, float32 (28, 12) = 0.28 s centred on t, c0 dropped. 4 MFCC frames per video frame
because 100 Hz / 25 fps = 4. Rows before the clip's first or after its last MFCC frame repeat the edge row.

ATVGnet VG-net samples (`VGNetDataset`): T consecutive aligned face crops of one clip as targets, their ground-truth
landmarks (the decoupled training of the paper: VG-net learns from real landmarks, AT-net's are used only at
inference) and one example frame of the same clip, faces in [-1, 1] and landmarks normalised as
`tasks.landmark_pca.normalise` does (crop pixels / crop_size * 2 - 1).

Zarr groups are opened lazily, on first use in each process, so DataLoader workers started with "spawn" each open
their own (the dataset pickles without them).
"""
from __future__ import annotations

import os
import random
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
import zarr
from torch.utils.data import DataLoader, Dataset, Sampler

from storage import manifest, store
from tasks.landmark_pca import LandmarkPCA
from tasks.landmark_pca import load as load_pca, normalise

MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps video
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


def ok_clips(store_dir: Path, split: str) -> pd.DataFrame:
    """The manifest rows of a split's ok clips, sorted by clip_id, index reset. Raises store.IncompleteStoreError
    (saying which build to run) when the store has no card, ValueError when the split has no ok clip."""
    rows = manifest.read(store.require_complete(store_dir) / store.MANIFEST)
    rows = rows[(rows["status"] == manifest.OK) & (rows["split"] == split)]
    if rows.empty:
        raise ValueError(f"{store_dir}: no ok clip in split {split!r}")
    return rows.sort_values("clip_id").reset_index(drop=True)


class ClipReader:
    """Reads one clip's arrays from a store through the manifest offsets; opens each shard's zarr group once per process.

    Picklable: the open groups are dropped when pickled and reopened on first use in the new process.
    """

    def __init__(self, store_dir: Path):
        self.store_dir = Path(store_dir)
        self._groups: dict[str, zarr.Group] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"store_dir": self.store_dir}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["store_dir"])

    def group(self, shard: str) -> zarr.Group:
        """The shard's zarr group, opened read-only on first use in this process."""
        if self._pid != os.getpid():  # forked: do not share handles with the parent
            self._groups, self._pid = {}, os.getpid()
        if shard not in self._groups:
            self._groups[shard] = zarr.open_group(self.store_dir / "shards" / f"{shard}.zarr", mode="r")
        return self._groups[shard]

    def landmarks(self, row) -> np.ndarray:
        """float32 (n_frames, 68, 2), crop pixels (x, y)."""
        s = int(row.frame_start)
        return np.asarray(self.group(row.shard)["landmarks"][s : s + int(row.n_frames)], dtype=np.float32)

    def mfcc(self, row) -> np.ndarray:
        """float32 (n_mfcc, 13) at 100 Hz, c0 = log-energy."""
        s = int(row.mfcc_start)
        return np.asarray(self.group(row.shard)["mfcc"][s : s + int(row.n_mfcc)], dtype=np.float32)

    def faces(self, row) -> np.ndarray:
        """uint8 (n_frames, crop, crop, 3), RGB aligned face crops."""
        s = int(row.frame_start)
        return np.asarray(self.group(row.shard)["face"][s : s + int(row.n_frames)], dtype=np.uint8)

    def mouths(self, row) -> np.ndarray:
        """uint8 (n_frames, 64, 64, 3), RGB mouth crops."""
        s = int(row.frame_start)
        return np.asarray(self.group(row.shard)["mouth"][s : s + int(row.n_frames)], dtype=np.uint8)

    def audio(self, row) -> np.ndarray:
        """int16 (n_samples,), 16 kHz mono."""
        s = int(row.audio_start)
        return np.asarray(self.group(row.shard)["audio"][s : s + int(row.n_samples)], dtype=np.int16)


@dataclass(frozen=True)
class Window:
    clip: int  # row in the dataset's clip table
    start: int  # first video frame of the window, within the clip


class ClipWindowDataset(Dataset):
    """Windows of T consecutive video frames of the ok clips of a store split, with a per-process LRU cache of
    each clip's arrays. Subclasses define `read_clip(row) -> tuple of arrays` and `__getitem__`.

    Windows start at frames 0, stride, 2*stride, ... up to n_frames - T; clips shorter than T give none. The example
    frame of item i is drawn from `np.random.default_rng((seed, i))`, so it is fixed per (seed, item).
    cache_clips: how many clips' arrays each process keeps (LRU); a cached clip is read from its shard once.
    Raises ValueError when the split has no ok clip or no clip of at least T frames.
    """

    def __init__(self, store_dir: Path, split: str, *, T: int, stride: int, seed: int, cache_clips: int):
        if T < 1 or stride < 1 or cache_clips < 1:
            raise ValueError(f"T, stride and cache_clips must be >= 1, got T={T}, stride={stride}, "
                             f"cache_clips={cache_clips}")
        self.store_dir, self.split, self.T, self.stride, self.seed = Path(store_dir), split, T, stride, seed
        self.clips = ok_clips(self.store_dir, split)
        self.windows = [
            Window(c, s) for c, n in enumerate(self.clips["n_frames"]) for s in range(0, int(n) - T + 1, stride)
        ]
        if not self.windows:
            raise ValueError(f"{store_dir}: no clip of split {split!r} has {T} frames")
        self.reader = ClipReader(self.store_dir)
        self.cache_clips = cache_clips
        self._cache: OrderedDict[int, tuple[np.ndarray, ...]] = OrderedDict()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # each worker fills its own
        return state

    def __len__(self) -> int:
        return len(self.windows)

    def read_clip(self, row) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def clip_arrays(self, clip: int) -> tuple[np.ndarray, ...]:
        """`read_clip` of the clip table's row `clip`, read once and cached (LRU of `cache_clips`)."""
        if clip in self._cache:
            self._cache.move_to_end(clip)
            return self._cache[clip]
        arrays = self.read_clip(self.clips.iloc[clip])
        self._cache[clip] = arrays
        if len(self._cache) > self.cache_clips:
            self._cache.popitem(last=False)
        return arrays

    def example_frame(self, i: int, n_frames: int) -> int:
        """The example frame of item i: fixed per (seed, i)."""
        return int(np.random.default_rng((self.seed, i)).integers(n_frames))


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


def faces_to_tensor(faces: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) RGB -> float32 (..., 3, H, W) in [-1, 1] (`x / 127.5 - 1`)."""
    t = torch.from_numpy(np.ascontiguousarray(faces)).movedim(-1, -3)
    return t.to(torch.float32).div_(127.5).sub_(1.0).contiguous()


class VGNetDataset(ClipWindowDataset):
    """VG-net training samples from a store split (`ClipWindowDataset` windows).

    Item i is a dict of float32 tensors (Chen et al. CVPR 2019, Sec. 3.2; decoupled training on ground-truth
    landmarks, as the paper does):
      example_face (3, H, W) in [-1, 1]: the example frame (one frame of the same clip, drawn as `ATNetDataset`
                                        draws its example);
      example_landmarks (136,): that frame's landmarks, normalised (`tasks.landmark_pca.normalise`: crop pixels /
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


class StepBatchSampler(Sampler[list[int]]):
    """Endless batches of indices whose order depends only on (seed, step): batch k is the (k mod E)-th batch of
    epoch k // E's permutation, E = n // batch_size (the last partial batch of an epoch is dropped).

    Starting at `start_step` yields exactly what an uninterrupted run yields from that step on, so a resumed
    training sees the same data. Raises ValueError when n < batch_size.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, start_step: int = 0):
        if n < batch_size or batch_size < 1:
            raise ValueError(f"need 1 <= batch_size <= n, got batch_size={batch_size}, n={n}")
        self.n, self.batch_size, self.seed, self.start_step = n, batch_size, seed, start_step
        self.batches_per_epoch = n // batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        step, epoch, perm = self.start_step, None, None
        while True:
            e, b = divmod(step, self.batches_per_epoch)
            if e != epoch:
                epoch, perm = e, self.permutation(e)
            yield perm[b * self.batch_size : (b + 1) * self.batch_size].tolist()
            step += 1


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed numpy and python from the worker's torch seed (itself from the loader's generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_dataloader(
    dataset: Dataset,
    batch_size: int = 16,
    *,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    batch_sampler: Sampler | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A reproducible DataLoader: seeded generator, `seed_worker`, and with num_workers > 0 persistent "spawn" workers.

    With `batch_sampler` (e.g. `StepBatchSampler`), batch_size, shuffle and drop_last are not used.
    """
    workers = dict(num_workers=num_workers, worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(seed))
    if num_workers > 0:
        workers.update(persistent_workers=True, multiprocessing_context="spawn")
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, pin_memory=pin_memory, **workers)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, pin_memory=pin_memory, **workers)


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
