"""Training-run state shared by the trainers: device choice, seeding, RNG state, and checkpoint files written
atomically and read back with `torch.load(weights_only=True)` (tensors and primitive containers only)."""
from __future__ import annotations

import random
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda when available, else cpu; anything else as given."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (every device's) global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every cuda device


def rng_state() -> dict:
    """RNG states as tensors and primitives (weights_only-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save(state: dict, path: Path) -> Path:
    """torch.save `state` to a temporary name beside `path`, then rename it into place (a reader never sees half a
    file). Returns `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load(path: Path, fmt: str) -> dict:
    """A checkpoint dict read with `torch.load(weights_only=True)` onto the CPU.
    Raises ValueError when its "format" entry is not `fmt`."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} checkpoint")
    return ckpt


def check_resumable(saved: dict, config: dict, may_differ: set[str]) -> None:
    """Raise ValueError when a training config (`to_dict()` form) changes, against the checkpoint's, a field outside
    `may_differ` — one that would make a resumed run differ from an uninterrupted one."""
    changed = sorted(k for k in saved if k not in may_differ and saved[k] != config.get(k))
    if changed:
        raise ValueError(f"cannot resume: config differs from the checkpoint's in {changed}")


@contextmanager
def torch_threads(n: int):
    """Run the block with `n` torch intra-op threads (0: leave torch's setting), restored after. On a small, shared
    CPU one thread avoids OpenMP threads spinning against other processes."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
