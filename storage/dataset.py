"""Reading a store for training, for every system: clip table, clip reader, windows of consecutive frames, the
rank-aware seeded batch order, DataLoader. Each system's Datasets build on these (`models/<system>/data.py`).

Store layout and field meanings: DESIGN "The store" and `storage.manifest`. Per clip, the manifest gives
`shard, frame_start, n_frames` (rows of the shard's per-frame arrays at 25 fps) and `mfcc_start, n_mfcc` (rows of the
shard's `mfcc` float32 (A, 13) at 100 Hz, c0 = log-energy).

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

from storage import location, manifest, shards, store

MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps video


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
        self.store_dir = location.as_path(store_dir)
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
            self._groups[shard] = shards.open_shard(self.store_dir, shard)
        return self._groups[shard]

    def landmarks(self, row) -> np.ndarray:
        """float32 (n_frames, 68, 2), crop pixels (x, y)."""
        s = int(row.frame_start)
        return np.asarray(self.group(row.shard)["landmarks"][s : s + int(row.n_frames)], dtype=np.float32)

    def mfcc(self, row) -> np.ndarray:
        """float32 (n_mfcc, 13) at 100 Hz, c0 = log-energy."""
        s = int(row.mfcc_start)
        return np.asarray(self.group(row.shard)["mfcc"][s : s + int(row.n_mfcc)], dtype=np.float32)

    def crops(self, row, name: str) -> np.ndarray:
        """uint8 (n_frames, H, W, 3), RGB: the clip's frames of the store crop `name` (`storage.crops`). Raises
        KeyError when the store was built without that crop."""
        s = int(row.frame_start)
        return np.asarray(self.group(row.shard)[name][s : s + int(row.n_frames)], dtype=np.uint8)

    def faces(self, row) -> np.ndarray:
        """uint8 (n_frames, crop, crop, 3), RGB aligned face crops."""
        return self.crops(row, "face")

    def mouths(self, row) -> np.ndarray:
        """uint8 (n_frames, 64, 64, 3), RGB mouth crops."""
        return self.crops(row, "mouth")

    def landmarks_src(self, row) -> np.ndarray:
        """float32 (n_frames, 68, 2), source-frame pixels (x, y)."""
        s = int(row.frame_start)
        return np.asarray(self.group(row.shard)["landmarks_src"][s : s + int(row.n_frames)], dtype=np.float32)

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
    clip_ids: only these clips of the split (None: all of its ok clips).
    Raises ValueError when the split has no ok clip (of `clip_ids`) or no clip of at least T frames.
    """

    def __init__(self, store_dir: Path, split: str, *, T: int, stride: int, seed: int, cache_clips: int,
                 clip_ids: frozenset[str] | None = None):
        if T < 1 or stride < 1 or cache_clips < 1:
            raise ValueError(f"T, stride and cache_clips must be >= 1, got T={T}, stride={stride}, "
                             f"cache_clips={cache_clips}")
        self.store_dir, self.split = location.as_path(store_dir), split
        self.T, self.stride, self.seed = T, stride, seed
        self.clips = ok_clips(self.store_dir, split)
        if clip_ids is not None:
            self.clips = self.clips[self.clips["clip_id"].isin(clip_ids)].reset_index(drop=True)
            if self.clips.empty:
                raise ValueError(f"{store_dir}: none of the {len(clip_ids)} chosen clips is an ok clip of split "
                                 f"{split!r}")
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


def faces_to_tensor(faces: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) RGB -> float32 (..., 3, H, W) in [-1, 1] (`x / 127.5 - 1`)."""
    t = torch.from_numpy(np.ascontiguousarray(faces)).movedim(-1, -3)
    return t.to(torch.float32).div_(127.5).sub_(1.0).contiguous()



class StepBatchSampler(Sampler[list[int]]):
    """Endless batches of indices whose order depends only on (seed, step): global batch k is the (k mod E)-th batch
    of epoch k // E's permutation, E = n // batch_size (the last partial batch of an epoch is dropped).

    Rank-aware for DDP: of each global batch of `batch_size` indices, rank r of `world_size` takes the r-th of
    `world_size` equal slices, so N ranks together see exactly the batches one process sees. Starting at
    `start_step` yields exactly what an uninterrupted run yields from that step on, so a resumed training sees the
    same data. Raises ValueError when n < batch_size or batch_size is not a multiple of world_size.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, start_step: int = 0, rank: int = 0,
                 world_size: int = 1):
        if n < batch_size or batch_size < 1:
            raise ValueError(f"need 1 <= batch_size <= n, got batch_size={batch_size}, n={n}")
        if batch_size % world_size or not 0 <= rank < world_size:
            raise ValueError(f"the global batch {batch_size} must split evenly over {world_size} ranks")
        self.n, self.batch_size, self.seed, self.start_step = n, batch_size, seed, start_step
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = n // batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        step, epoch, perm = self.start_step, None, None
        local = self.batch_size // self.world_size
        while True:
            e, b = divmod(step, self.batches_per_epoch)
            if e != epoch:
                epoch, perm = e, self.permutation(e)
            first = b * self.batch_size + self.rank * local
            yield perm[first : first + local].tolist()
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

