"""Zarr v3 shards: one group per shard, written by exactly one writer at a time, visible only when complete,
and verified before anything counts it as complete.

Inside a shard each field (DESIGN table) is one array concatenated over the shard's clips along axis 0, stored
with zarr's sharding codec (one file per array) and Blosc-zstd compression; chunks of one second keep random
access for training cheap. The shard's manifest rows travel inside it (`manifest.parquet`), so a shard and its
rows appear together. The last file written, `shard.json`, records the frame, sample and MFCC counts, each array's
shape and dtype and the size of every file; `verify` checks a shard against it and against its manifest rows, so a
resumed build never trusts a shard because its folder exists.

How a shard appears at once (storage/location.py):
- on a local root it is written to `<name>.zarr.partial-<random>` and renamed to `<name>.zarr`;
- on an object store, which has no rename, it is written under its own key `<name>.<random>.zarr` and made visible
  by its index object `<name>.json` (`{"key": "<name>.<random>.zarr"}`), created last, by a conditional PUT that
  only succeeds if no index exists. A reader finds the shard through the index only, so it sees either no shard or
  a whole one, and two writers can never both publish a shard.

A writer holds the shard's lock (`hold_writer`, `<store>/locks/<name>.lock`) from before it preprocesses until the
shard is visible: partial folders (local) or unindexed keys (object store) it then finds are a dead writer's and
are removed, never a live one's.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zarr
from zarr.codecs import BloscCodec

from storage import crops, location, locks, manifest

PART_MANIFEST = "manifest.parquet"
MARKER = "shard.json"
MARKER_FORMAT = "talkface.shard/1"
INDEX_FORMAT = "talkface.shard-index/1"
PARTIAL = ".partial-"
NOT_BUILT = "not built"

# field → (frames per chunk along axis 0): 1 s of video frames, 4 s of audio samples, 4 s of MFCC frames
CHUNK_ROWS = {
    **dict.fromkeys(crops.CROPS, 25), "landmarks": 250, "landmarks_src": 250, "transform": 250,
    "audio": 64000, "mfcc": 400,
}
FIELDS = tuple(CHUNK_ROWS)
# field → (dtype, the manifest count its axis 0 adds up: n_frames | n_samples | n_mfcc), the store contract
CONTRACT = {
    **{name: ("uint8", "n_frames") for name in crops.CROPS}, "landmarks": ("float32", "n_frames"),
    "landmarks_src": ("float32", "n_frames"), "transform": ("float32", "n_frames"),
    "audio": ("int16", "n_samples"), "mfcc": ("float32", "n_mfcc"),
}
# every shard holds these; the other crops only when its build cut them (`storage.crops`, the build's `crops`)
REQUIRED = tuple(f for f in FIELDS if f not in crops.CROPS or f == crops.REQUIRED)
COUNTS = ("n_frames", "n_samples", "n_mfcc")


def fields_of(crop_names) -> tuple[str, ...]:
    """The fields of a shard whose build cut the crops `crop_names`, in `FIELDS` order."""
    return tuple(f for f in FIELDS if f in REQUIRED or f in set(crop_names))


def shard_name(index: int) -> str:
    """'shard-NNNNN' for a 0-based shard index."""
    return f"shard-{index:05d}"


def _index_path(store_dir: Path, name: str) -> Path:
    return location.as_path(store_dir) / "shards" / f"{name}.json"


def shard_path(store_dir: Path, name: str) -> Path:
    """The shard's folder: `<store>/shards/<name>.zarr` on a local root; on an object store the key its index
    `<name>.json` names, or `<name>.zarr` (which is never written there) when it has no index yet."""
    root = location.as_path(store_dir) / "shards"
    if location.is_remote(root):
        try:
            index = json.loads(_index_path(store_dir, name).read_text())
        except (OSError, ValueError):  # FileNotFoundError: not published yet
            return root / f"{name}.zarr"
        if index.get("format") == INDEX_FORMAT and "/" not in str(index.get("key", "/")):
            return root / index["key"]
    return root / f"{name}.zarr"


def lock_path(store_dir: Path, name: str) -> Path:
    return location.as_path(store_dir) / "locks" / f"{name}.lock"


def hold_writer(store_dir: Path, name: str, log: logging.Logger | logging.LoggerAdapter | None = None
                ) -> AbstractContextManager[dict | None]:
    """The shard's writer lock (storage/locks.py `hold`): waits for a live writer of the same shard, takes over
    from a dead one. Hold it around preprocessing and `write_shard`."""
    return locks.hold(lock_path(store_dir, name), f"writer of {location.as_path(store_dir).name}/{name}", log)


def _zarr_store(root: Path, read_only: bool):
    """What zarr opens for a shard folder: its local path, or an FsspecStore on the object store's key."""
    if not location.is_remote(root):
        return str(root)
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(str(root), storage_options=dict(root.storage_options), read_only=read_only)


def row_counts(rows: list[dict]) -> dict[str, int]:
    """Sum of n_frames, n_samples, n_mfcc over the ok rows."""
    ok = [r for r in rows if r["status"] == manifest.OK]
    return {k: sum(int(r[k]) for r in ok) for k in COUNTS}


def _check_arrays(arrays: dict[str, np.ndarray], counts: dict[str, int]) -> None:
    if not set(REQUIRED) <= set(arrays) <= set(FIELDS):
        raise ValueError(f"a shard holds the fields {REQUIRED} and any of the crops {tuple(crops.CROPS)}, got "
                         f"{sorted(arrays)}")
    for field in fields_of(arrays):
        dtype, count = CONTRACT[field]
        a = arrays[field]
        if a.dtype != np.dtype(dtype) or len(a) != counts[count]:
            raise ValueError(f"{field} is {a.dtype} with {len(a)} rows; its manifest rows say {dtype} with "
                             f"{count} = {counts[count]}")


def _file_sizes(root: Path) -> dict[str, int]:
    """relative POSIX path → bytes of every file under `root` (one listing on an object store)."""
    if location.is_remote(root):
        prefix = root.path.rstrip("/") + "/"
        return {k[len(prefix):]: int(v["size"]) for k, v in sorted(root.fs.find(root.path, detail=True).items())}
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _remove_leftovers(store_dir: Path, name: str, keep: Path | None) -> None:
    """A dead writer's leftovers of shard `name`: local `<name>.zarr.partial-*` folders; on an object store every
    `<name>.*.zarr` key but the indexed one (`keep`)."""
    root = location.as_path(store_dir) / "shards"
    pattern = f"{name}.zarr{PARTIAL}*" if not location.is_remote(root) else f"{name}.*.zarr"
    for stale in root.glob(pattern):
        if keep is None or stale.name != keep.name:
            location.remove_tree(stale)


def write_shard(store_dir: Path, name: str, arrays: dict[str, np.ndarray], rows: list[dict]) -> Path:
    """Write one shard atomically: every field array (concatenated over clips), the shard's manifest rows and,
    last, its marker `shard.json`.

    arrays: field → array whose axis 0 concatenates the ok clips (dtypes as DESIGN; may have length 0): the `REQUIRED`
    fields and the crops the build cut (`storage.crops`); rows: every
    clip's manifest row, whose ok rows' n_frames / n_samples / n_mfcc add up to the arrays' lengths. The caller
    holds `hold_writer(store_dir, name)`: a dead writer's leftovers are removed first, then the shard is written to
    `<name>.zarr.partial-<random>` and renamed to `<name>.zarr` (local root), or written to `<name>.<random>.zarr`
    and published by its index (object store, see the module docstring); an existing shard that fails `verify` is
    replaced. Returns the shard's folder. Raises FileExistsError if the shard is already complete (or was published
    by another writer meanwhile), ValueError when the arrays disagree with the rows or the contract.
    """
    counts = row_counts(rows)
    _check_arrays(arrays, counts)
    final = shard_path(store_dir, name)
    exists = final.is_dir()
    if exists and verify(store_dir, name) is None:
        raise FileExistsError(f"shard {final} already exists and is complete; shards are immutable")
    remote = location.is_remote(final)
    _remove_leftovers(store_dir, name, final if exists else None)
    token = uuid.uuid4().hex[:8]
    tmp = final.with_name(f"{name}.{token}.zarr" if remote else f"{final.name}{PARTIAL}{token}")
    if not remote:
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
    with location.writing(tmp):
        _write_arrays(tmp, arrays)
    manifest.write(rows, tmp / PART_MANIFEST)
    fields = fields_of(arrays)
    marker = {"format": MARKER_FORMAT, "counts": counts,
              "arrays": {f: {"shape": list(arrays[f].shape), "dtype": str(arrays[f].dtype)} for f in fields},
              "files": _file_sizes(tmp)}
    location.write_bytes(tmp / MARKER, json.dumps(marker, indent=1, sort_keys=True).encode())
    if remote:  # an index already there names a shard that failed verification (or whose keys are gone)
        _publish_index(store_dir, name, tmp, replacing=_index_path(store_dir, name).exists())
        if exists:
            location.remove_tree(final)
        return tmp
    if exists:  # a shard that failed verification: set it aside, put the new one in place, remove it
        aside = final.with_name(f"{final.name}{PARTIAL}{uuid.uuid4().hex[:8]}-replaced")
        os.replace(final, aside)
        os.replace(tmp, final)
        location.remove_tree(aside)
    else:
        os.replace(tmp, final)
    return final


def _write_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """One zarr v3 group at `folder`: each field one array, one shard file per array, chunks of `CHUNK_ROWS`."""
    group = zarr.open_group(_zarr_store(folder, read_only=False), mode="w", zarr_format=3)
    compressor = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
    fields = fields_of(arrays)
    for field in fields:
        data = arrays[field]
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


def _publish_index(store_dir: Path, name: str, folder: Path, replacing: bool) -> None:
    """Make the shard written to `folder` visible on an object store: its index names `folder`. A new shard's
    index is created only if none exists (conditional PUT); replacing a shard that failed verification overwrites
    the old index (the writer holds the shard's lock). Raises FileExistsError, after removing `folder`, when
    another writer published the shard first (possible only if this writer's lock lease lapsed)."""
    doc = json.dumps({"format": INDEX_FORMAT, "key": folder.name}).encode()
    index = _index_path(store_dir, name)
    if replacing:
        location.write_bytes(index, doc)
    elif not location.publish(index, doc):
        location.remove_tree(folder)
        raise FileExistsError(f"shard {index} was published by another writer meanwhile; kept it, removed {folder}")


def verify(store_dir: Path, name: str) -> str | None:
    """None when the shard is complete, else why not (`NOT_BUILT` when its folder does not exist).

    Complete means: its marker `shard.json` is there (written last); every file it lists has the size it lists;
    every array it lists and every `REQUIRED` one opens with the marker's shape and the contract's dtype, its length
    equal to the n_frames / n_samples / n_mfcc its ok manifest rows add up to; every ok row points into this shard.
    Reads metadata, the rows and file sizes only, not the arrays' data.
    """
    root = shard_path(store_dir, name)
    if not root.is_dir():
        return NOT_BUILT
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return f"no readable {MARKER} (its writer stopped before finishing, or it was removed)"
    if marker.get("format") != MARKER_FORMAT:
        return f"{MARKER} is {marker.get('format')!r}, expected {MARKER_FORMAT!r}"
    fields = fields_of(set(marker.get("arrays", {})) & set(FIELDS))
    present = _file_sizes(root)
    for field in fields:
        if f"{field}/zarr.json" not in present:
            return f"array {field} is missing"
    for rel, size in marker["files"].items():
        if rel not in present:
            return f"{rel} is missing"
        if present[rel] != size:
            return f"{rel} has {present[rel]} bytes, its writer wrote {size}"
    try:
        rows = pq.read_table(location.open_bytes(root / PART_MANIFEST), columns=["status", "shard", *COUNTS])
    except Exception as exc:  # a damaged Parquet file raises pyarrow's own errors
        return f"its {PART_MANIFEST} cannot be read: {exc}"
    ok = rows.filter(pc.equal(rows["status"], manifest.OK))
    elsewhere = sorted(set(ok["shard"].to_pylist()) - {name})
    if elsewhere:
        return f"ok rows point to other shards: {elsewhere}"
    counts = {k: int(pc.sum(ok[k]).as_py() or 0) for k in COUNTS}
    if counts != marker["counts"]:
        return f"its manifest rows add up to {counts}, {MARKER} says {marker['counts']}"
    try:
        group = zarr.open_group(_zarr_store(root, read_only=True), mode="r", zarr_format=3)
    except Exception as exc:  # zarr raises several kinds for a damaged group
        return f"the zarr group cannot be opened: {exc}"
    for field in fields:
        dtype, count = CONTRACT[field]
        try:
            arr, expect = group[field], marker["arrays"].get(field, {})
        except KeyError:
            return f"array {field} is missing"
        if list(arr.shape) != expect.get("shape") or str(arr.dtype) != dtype:
            return f"array {field} is {arr.dtype} {tuple(arr.shape)}, expected {dtype} {tuple(expect.get('shape', ()))}"
        if arr.shape[0] != counts[count]:
            return f"array {field} has {arr.shape[0]} rows, its manifest rows' {count} add up to {counts[count]}"
    return None


def check(store_dir: Path, names: list[str], threads: int = 8) -> dict[str, str | None]:
    """`verify` for each named shard, `threads` at a time (the reads wait on the file system, a network one above
    all): name → None (complete) or the reason it is not."""
    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(names, pool.map(lambda name: verify(store_dir, name), names)))


def open_shard(store_dir: Path, name: str) -> zarr.Group:
    """Open a complete shard read-only (on an object store, through its index)."""
    return zarr.open_group(_zarr_store(shard_path(store_dir, name), read_only=True), mode="r", zarr_format=3)


def completed(store_dir: Path) -> list[str]:
    """Names of the store's shards that pass `verify`, sorted."""
    root = location.as_path(store_dir) / "shards"
    if not root.exists():
        return []
    pattern, suffix = ("shard-*.json", ".json") if location.is_remote(root) else ("shard-*.zarr", ".zarr")
    names = sorted(p.name[: -len(suffix)] for p in root.glob(pattern))
    return [n for n in names if verify(store_dir, n) is None]
