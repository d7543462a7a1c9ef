"""Reading a stage's trained weights for inference, from a training checkpoint ("talkface.train/1",
`tasks.training`) or from a model directory's inference file ("talkface.weights/1", `tasks.model_dir`): both hold
`system`, `stage`, `step`, `modules` {name: state dict}, `config` (the stage config's dict form), `extra` (e.g.
AT-net's PCA basis) and `store_dir`; only training checkpoints hold optimizer and RNG state. Read with
`torch.load(weights_only=True)`: tensors and primitive containers only. Pure torch (inference never imports
training code)."""
from __future__ import annotations

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
