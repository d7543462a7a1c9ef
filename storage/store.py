"""Store layout and identity: `<data-root>/stores/<dataset>/<version>/`, where `<version>` is a digest of the
sorted source checksums, the label files' checksums, the preprocessing parameters and the preprocessing code
version, so an unchanged rebuild maps onto the same, already complete, store."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

CARD = "card.json"
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
    return Path(data_root) / "stores" / dataset / version


def is_complete(path: Path) -> bool:
    """A store is complete (and immutable) once its card is written, the build's last step."""
    return (Path(path) / CARD).exists()


def read_card(path: Path) -> dict:
    """The card of a complete store. Raises FileNotFoundError, saying what to do, when the store is incomplete."""
    if not is_complete(path):
        raise FileNotFoundError(f"{path} is not a complete store (no {CARD}); build it with `talkface build`")
    return json.loads((Path(path) / CARD).read_text())


def write_card(path: Path, card: dict) -> None:
    """Write card.json atomically (it marks the store complete)."""
    tmp = Path(path) / (CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
    tmp.replace(Path(path) / CARD)


def latest(data_root: Path, dataset: str) -> Path | None:
    """The most recently completed store of a dataset under `data_root`, or None."""
    root = Path(data_root) / "stores" / dataset
    done = [p for p in root.glob("*") if is_complete(p)] if root.exists() else []
    return max(done, key=lambda p: (p / CARD).stat().st_mtime) if done else None
