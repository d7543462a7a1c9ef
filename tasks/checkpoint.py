"""Training-run state for `tasks.training`: device choice, seeding, RNG state, checkpoint files written
atomically and read back with `torch.load(weights_only=True)` (tensors and primitive containers only)."""
from __future__ import annotations

import random
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from models.weights import load_file


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


# -- finding the checkpoints a run resumes from --------------------------------------------------------------------

_STEP = re.compile(r"^([a-z0-9_]+)-step(\d+)\.pt$")


def latest_names(names: list[str], stages: tuple[str, ...]) -> dict[str, str | None]:
    """{stage: name} for each of `stages`: of file names or paths like `<stage>-stepNNNNNN.pt`, the highest step of
    each stage (None where there is none); other names are ignored."""
    found: dict[str, tuple[int, str] | None] = dict.fromkeys(stages)
    for name in names:
        m = _STEP.match(Path(name).name)
        if m and m[1] in found and (found[m[1]] is None or int(m[2]) > found[m[1]][0]):
            found[m[1]] = (int(m[2]), name)
    return {stage: (hit[1] if hit else None) for stage, hit in found.items()}


def latest_checkpoints(folder: Path, stages: tuple[str, ...]) -> dict[str, Path | None]:
    """{stage: path} of the highest-step `<stage>-stepNNNNNN.pt` in `folder` for each of `stages` (None where there
    is none; a missing folder gives all None)."""
    names = [str(p) for p in Path(folder).glob("*-step*.pt")] if Path(folder).is_dir() else []
    return {stage: (Path(name) if name else None) for stage, name in latest_names(names, stages).items()}


def resume_points(path: Path, system: str, stages: tuple[str, ...]) -> dict[str, Path | None]:
    """Where a run of `system`'s stages `stages` (in training order) continues when given one checkpoint: that checkpoint
    for its own stage, the latest checkpoint beside it for each earlier stage (a VG-net checkpoint resumes with the
    AT-net its run trained), None for each later one (they start after it finishes).
    Raises FileNotFoundError when missing, ValueError when it is not a checkpoint of `system` and one of `stages`
    (naming what it is)."""
    path = Path(path)
    ckpt = load_file(path, "checkpoint")
    held = (ckpt.get("system"), ckpt.get("stage")) if isinstance(ckpt, dict) else (None, None)
    if held[0] != system or held[1] not in stages:
        what = f"{held[0]}/{held[1]}" if held[0] else "not a talkface training checkpoint"
        raise ValueError(f"cannot resume {system} ({', '.join(stages)}) from {path}: it is {what}")
    stage = held[1]
    points = latest_checkpoints(path.parent, stages)
    points[stage] = path
    for later in stages[stages.index(stage) + 1:]:
        points[later] = None
    return points
