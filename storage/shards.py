"""Zarr v3 shards: one group per shard, written by exactly one task, to a temporary name renamed when complete.

Inside a shard each field (DESIGN table) is one array concatenated over the shard's clips along axis 0, stored
with zarr's sharding codec (one file per array) and Blosc-zstd compression; chunks of one second keep random
access for training cheap. The shard's manifest rows travel inside it (`manifest.parquet`), so a shard and its
rows appear together, atomically, by one rename.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from storage import manifest

PART_MANIFEST = "manifest.parquet"
PARTIAL = ".partial-"

# field → (frames per chunk along axis 0): 1 s of video frames, 4 s of audio samples, 4 s of MFCC frames
CHUNK_ROWS = {
    "face": 25, "mouth": 25, "landmarks": 250, "landmarks_src": 250, "transform": 250,
    "audio": 64000, "mfcc": 400,
}
FIELDS = tuple(CHUNK_ROWS)


def shard_name(index: int) -> str:
    """'shard-NNNNN' for a 0-based shard index."""
    return f"shard-{index:05d}"


def shard_path(store_dir: Path, name: str) -> Path:
    return Path(store_dir) / "shards" / f"{name}.zarr"


def is_complete(store_dir: Path, name: str) -> bool:
    """A shard exists only once complete (the rename is the commit)."""
    return (shard_path(store_dir, name) / PART_MANIFEST).exists()


def write_shard(store_dir: Path, name: str, arrays: dict[str, np.ndarray], rows: list[dict]) -> Path:
    """Write one shard atomically: every field array (concatenated over clips) and the shard's manifest rows.

    arrays: field → array whose axis 0 concatenates the clips (dtypes as DESIGN; may have length 0).
    Writes to `<name>.zarr.partial-<random>` and renames it to `<name>.zarr`. Leftovers of interrupted writers
    are removed first. Raises FileExistsError if the shard is already complete.
    """
    final = shard_path(store_dir, name)
    if final.exists():
        raise FileExistsError(f"shard {final} already exists; shards are immutable")
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f"{final.name}{PARTIAL}*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.with_name(f"{final.name}{PARTIAL}{uuid.uuid4().hex[:8]}")
    group = zarr.open_group(tmp, mode="w", zarr_format=3)
    compressor = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
    for field, data in arrays.items():
        rows_per_chunk = min(CHUNK_ROWS[field], max(len(data), 1))
        chunks = (rows_per_chunk, *data.shape[1:])
        n_chunks = max(1, -(-len(data) // rows_per_chunk))
        shards = (n_chunks * rows_per_chunk, *data.shape[1:])
        arr = group.create_array(
            field, shape=data.shape, dtype=data.dtype, chunks=chunks, shards=shards, compressors=compressor,
            fill_value=0,
        )
        if len(data):
            arr[...] = data
    manifest.write(rows, tmp / PART_MANIFEST)
    os.replace(tmp, final)
    return final


def open_shard(store_dir: Path, name: str) -> zarr.Group:
    """Open a complete shard read-only."""
    return zarr.open_group(shard_path(store_dir, name), mode="r", zarr_format=3)


def completed(store_dir: Path) -> list[str]:
    """Names of the complete shards of a store, sorted."""
    root = Path(store_dir) / "shards"
    if not root.exists():
        return []
    return sorted(p.name[: -len(".zarr")] for p in root.glob("shard-*.zarr") if (p / PART_MANIFEST).exists())
