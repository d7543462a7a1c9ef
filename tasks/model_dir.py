"""A trained system as one model directory (inference only: no optimizer or RNG state), logged to MLflow and
registered as `<system>` by the train flow. Pure: no Prefect, no MLflow.

Layout, each `.pt` read with `torch.load(weights_only=True)` (`models.weights.read_weights`):
    <stage>.pt   "talkface.weights/1" for each stage the system's inference uses: system, stage, step, modules (the
                 stage's `inference_modules` only), config, extra, store_dir
    model.json   the system (name, paper, stages, crop, metrics), each file's stage and steps, store version, usage
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from models.system import System
from models.weights import WEIGHTS_FORMAT, read_weights

CARD_FILE = "model.json"


def export_model(system: System, checkpoints: dict[str, Path], out_dir: Path, meta: dict | None = None) -> Path:
    """Write the model directory (module docstring) of `system` from each stage's final training checkpoint
    ({stage: path}, every stage with inference modules); returns it. meta: extra JSON-serialisable entries for
    model.json (store version, MLflow run id, ...). Raises KeyError naming a missing stage, ValueError when a
    checkpoint is another system's or stage's."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for stage in system.stages:
        if not stage.inference_modules:
            continue
        if checkpoints.get(stage.name) is None:
            raise KeyError(f"no {stage.name} checkpoint to export {system.name} from")
        ckpt = read_weights(checkpoints[stage.name], system.name, stage.name)
        torch.save({"format": WEIGHTS_FORMAT, "system": system.name, "stage": stage.name, "step": ckpt["step"],
                    "modules": {k: ckpt["modules"][k] for k in stage.inference_modules}, "config": ckpt["config"],
                    "extra": ckpt["extra"], "store_dir": ckpt["store_dir"]}, out_dir / f"{stage.name}.pt")
        files[f"{stage.name}.pt"] = {"stage": stage.name, "steps": int(ckpt["step"]), "store_dir": ckpt["store_dir"]}
    card = {"system": system.describe(), "format": WEIGHTS_FORMAT, "files": files,
            "usage": "talkface generate --image FACE.jpg --audio SPEECH.wav --out OUT.mp4 --model <this model's URI>",
            **(meta or {})}
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return out_dir


def read_card(model_dir: Path) -> dict:
    """model.json of a model directory. Raises FileNotFoundError when `model_dir` is not one."""
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a talkface model directory: no {CARD_FILE}")
    return json.loads(path.read_text())


def stage_file(model_dir: Path, system: str, stage: str) -> Path:
    """`<model_dir>/<stage>.pt` of a `system` model directory. Raises FileNotFoundError naming what is missing or
    which system the directory holds instead."""
    card = read_card(model_dir)
    held = card.get("system", {}).get("name")
    if held != system:
        raise FileNotFoundError(f"{model_dir} holds a {held} model, not {system}")
    path = Path(model_dir) / f"{stage}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a complete {system} model directory: no {path.name}")
    return path


def load_generator(model_dir: Path, device: str = "auto"):
    """The `models.system.Generator` of the system a model directory holds (its model.json), loaded on `device`
    ("auto": cuda when available). Raises FileNotFoundError when it is not a model directory, ValueError when its
    system is not registered or renders nothing (e.g. a SyncNet), or as the generator's loader."""
    from models.registry import get_system
    from tasks.checkpoint import resolve_device

    name = read_card(model_dir).get("system", {}).get("name")
    try:
        system = get_system(name)
    except KeyError as exc:
        raise ValueError(f"{model_dir}: {exc.args[0]}") from None
    if system.generator is None:
        raise ValueError(f"{model_dir} holds a {name} model, which renders no video")
    return system.generator.load(Path(model_dir), resolve_device(device))
