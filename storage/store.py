"""Store layout and identity: `<data-root>/stores/<dataset>/<version>/`, where `<version>` is a digest of the
sorted source checksums, the label files' checksums, the preprocessing parameters and the preprocessing code
version, so an unchanged rebuild maps onto the same, already complete, store.

One build per store version at a time: a build holds `<store>/locks/build.lock` (storage/locks.py) from before
it looks at the store until its card is written. `build.json`, written when a build starts, holds the build's
parameters, so a reader that finds the store incomplete can say which build to run. The card, written last and
only after every shard passed `shards.verify`, marks the store complete; readers refuse a store without one.
"""
from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

from storage import crops, location, locks

CARD = "card.json"
BUILD = "build.json"
MANIFEST = "manifest.parquet"
PCA = "pca.npz"
VALIDATION = "validation"
VERSION_LENGTH = 16


def version_digest(sources: list[tuple[str, str]], params: dict, code_version: str) -> str:
    """First 16 hex digits of sha256 over sorted (relative path, sha256) pairs, the parameters (JSON, sorted
    keys) and the code version. Same inputs → same digest on any machine."""
    h = hashlib.sha256()
    for rel, digest in sorted(sources):
        h.update(f"{rel}\0{digest}\n".encode())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(code_version.encode())
    return h.hexdigest()[:VERSION_LENGTH]


def store_dir(data_root: Path, dataset: str, version: str) -> Path:
    return location.as_path(data_root) / "stores" / dataset / version


class IncompleteStoreError(FileNotFoundError):
    """A reader was given a store without its card: never built here, still building, interrupted or failed."""


def lock_path(path: Path) -> Path:
    """The store version's build lock, `<store>/locks/build.lock`."""
    return location.as_path(path) / "locks" / "build.lock"


def is_complete(path: Path) -> bool:
    """A store is complete (and immutable) once its card is written, the build's last step."""
    return (location.as_path(path) / CARD).exists()


def _write_json(path: Path, doc: dict) -> None:
    """Write `doc` as JSON to `path` atomically (`location.write_bytes`: a rename, or one PUT)."""
    location.write_bytes(path, json.dumps(doc, indent=2, sort_keys=True, default=str).encode())


def write_build_params(path: Path, params: dict) -> None:
    """Write `build.json`: the parameters of the build under way (dataset, raw_root, shard_size, crop sizes, …)."""
    _write_json(location.as_path(path) / BUILD, params)


def build_command(path: Path, add_crops: dict[str, tuple[int, int]] | None = None) -> str:
    """The `talkface build …` command that completes the store at `<data-root>/stores/<dataset>/<version>`: the
    parameters of the build that started there (its build.json), or RAW_ROOT and the defaults when none did.
    add_crops: crops (name → (H, W)) to cut besides that build's, e.g. one a training stage needs (that is another
    store version)."""
    path = location.as_path(path)
    data_root = path.parents[2] if len(path.parents) > 2 else Path("DATA")
    try:
        p = json.loads((path / BUILD).read_text())
    except (OSError, ValueError):
        p = {"dataset": path.parent.name, "raw_root": "RAW_ROOT"}
    args = ["talkface", "build", "--dataset", p["dataset"], "--raw-root", str(p["raw_root"]),
            "--data-root", str(data_root)]
    for key, flag in (("shard_size", "--shard-size"), ("max_head_pose_deg", "--max-head-pose")):
        if p.get(key) is not None:
            args += [flag, str(p[key])]
    wanted = {name: tuple(size) for name, size in {**(p.get("crops") or crops.DEFAULT_CROPS),
                                                   **(add_crops or {})}.items()}
    for name, size in (wanted.items() if wanted != crops.DEFAULT_CROPS else ()):
        args += ["--crop", crops.format_crop(name, size)]
    return shlex.join(args)


def require_complete(path: Path) -> Path:
    """`path` if it is a complete store. Raises IncompleteStoreError saying why not and which build to run."""
    path = location.as_path(path)
    if is_complete(path):
        return path
    if not path.is_dir():
        why = "does not exist"
    elif not (path / "shards").is_dir() and not (path / BUILD).exists():
        why = "is not a store (no shards, no build.json)"
    else:
        holder = locks.read_holder(lock_path(path))
        why = (f"has no {CARD}: its build is still running or stopped before the end"
               + (f" ({locks.describe(holder)} holds or held its build lock)" if holder else ""))
    raise IncompleteStoreError(f"{path} {why}; readers use complete stores only. Build it (a build resumes "
                               f"where the last one stopped) with:\n  {build_command(path)}")


def read_card(path: Path) -> dict:
    """The card of a complete store. Raises IncompleteStoreError (a FileNotFoundError), saying which build to run,
    when the store is incomplete."""
    return json.loads((require_complete(path) / CARD).read_text())


def write_card(path: Path, card: dict) -> None:
    """Write card.json atomically (it marks the store complete)."""
    _write_json(location.as_path(path) / CARD, card)


def retract_card(path: Path) -> None:
    """Remove card.json: the store is incomplete again (a shard failed verification and is to be rebuilt)."""
    (location.as_path(path) / CARD).unlink(missing_ok=True)


def latest(data_root: Path, dataset: str) -> Path | None:
    """The most recently completed store of a dataset under `data_root`, or None."""
    root = location.as_path(data_root) / "stores" / dataset
    done = [p for p in root.glob("*") if is_complete(p)] if root.exists() else []
    return max(done, key=lambda p: (p / CARD).stat().st_mtime) if done else None
