"""Reading a stage's trained weights for inference, from a training checkpoint ("talkface.train/1",
`tasks.training`) or from a model directory's inference file ("talkface.weights/1", `tasks.model_dir`): both hold
`system`, `stage`, `step`, `modules` {name: state dict}, `config` (the stage config's dict form), `extra` (e.g.
AT-net's PCA basis) and `store_dir`; only training checkpoints hold optimizer and RNG state. Read with
`torch.load(weights_only=True)`: tensors and primitive containers only. Pure torch (inference never imports
training code)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

TRAIN_FORMAT = "talkface.train/1"
WEIGHTS_FORMAT = "talkface.weights/1"


def load_file(path: Path, what: str) -> object:
    """`torch.load(path, weights_only=True)` onto the CPU. Raises FileNotFoundError "<what> not found: <path>" when
    the file is missing, ValueError when it does not load as a weights-only torch file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's
        raise ValueError(f"{path}: not a readable weights-only torch file ({exc})") from None


def read_weights(path: Path, system: str, stage: str) -> dict:
    """The checkpoint or inference file at `path`, on the CPU. Raises FileNotFoundError when it is missing,
    ValueError when it is unreadable, not a talkface weights file, or another system's or stage's (naming both)."""
    state = load_file(path, f"{system}/{stage} weights")
    if not isinstance(state, dict) or state.get("format") not in (TRAIN_FORMAT, WEIGHTS_FORMAT):
        fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: not a talkface checkpoint (format {fmt!r})")
    if (state.get("system"), state.get("stage")) != (system, stage):
        raise ValueError(f"{path} holds {state.get('system')}/{state.get('stage')} weights, not {system}/{stage}")
    return state


class AuthorsKeyError(ValueError):
    """A released (authors') state dict that does not map onto talkface's module: the message names the keys or
    shapes."""


def matched_state(mapped: dict[str, torch.Tensor], names: dict[str, str], model: torch.nn.Module,
                  what: str) -> dict[str, torch.Tensor]:
    """A state dict for `model` from `mapped` (talkface key -> tensor, renamed from a released file; `names` gives
    each one's key in that file), checked against `model.state_dict()`: every tensor present with its shape
    (BatchNorm's `num_batches_tracked`, unused in eval mode and not written by torch 0.4.0, may be missing: set to 0)
    and none left over. Returns copies in the model's dtypes. Raises AuthorsKeyError naming the missing, mismatched
    or left-over tensors."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing:
        raise AuthorsKeyError(f"{what}: the file lacks {len(missing)} tensor(s) of the authors' module; talkface's "
                              f"{', '.join(missing[:8])} stay(s) unfilled")
    left = sorted(set(mapped) - set(expected))
    if left:
        raise AuthorsKeyError(f"{what}: tensors talkface's module has no room for: "
                              f"{', '.join(names.get(k, k) for k in left[:8])}")
    out = {}
    for key, ref in expected.items():
        value = mapped.get(key)
        if value is None:  # num_batches_tracked of an old torch
            out[key] = torch.zeros_like(ref)
            continue
        if tuple(value.shape) != tuple(ref.shape):
            raise AuthorsKeyError(f"{what}: {names.get(key, key)} has shape {tuple(value.shape)}, talkface's {key} "
                                  f"{tuple(ref.shape)}")
        out[key] = value.detach().to(ref.dtype).clone()
    return out


@dataclass(frozen=True)
class Released:
    """A system's weights as its authors released them, converted for talkface (`System.importer`): what
    `tasks.model_dir.export_released` writes as a model directory.

    stages: {stage: {"modules": {name: state dict}, "config": the networks' config dicts as the stage's inference
        file holds them, "extra": {"protocol": "authors", ...}}}: each becomes `<stage>.pt` ("talkface.weights/1").
    alias: the MLflow alias it registers under ("authors", "authors-grid", ...).
    trained_on: the dataset the authors trained it on ("lrw", "grid", ...; "unknown" when the file does not say).
    """

    stages: dict[str, dict]
    alias: str
    trained_on: str


def load_module(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> torch.nn.Module:
    """`module.load_state_dict(state)` (strict); returns `module`. Raises ValueError naming `path` and the tensors
    that do not fit when the file was written for another form of the module (e.g. by an older talkface: VG-net's
    ConvGRU before it took the authors' form), instead of torch's RuntimeError."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"{path}: its {what} weights do not fit talkface's {type(module).__name__} (written by "
                         f"another version of it? retrain that stage): {detail[:600]}") from None
    return module
