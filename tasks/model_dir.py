"""A trained system as one model directory (inference only: no optimizer or RNG state), logged to MLflow and
registered as `<system>` by the train flow. Pure: no Prefect, no MLflow.

Layout, each `.pt` read with `torch.load(weights_only=True)` (`models.weights.read_weights`):
    <stage>.pt   "talkface.weights/1" for each stage the system's inference uses: system, stage, step, modules (the
                 stage's `inference_modules` only), config, extra, store_dir
    model.json   the system (name, paper, stages, crop, metrics), each file's stage and steps, store version, usage

A model its authors released (`export_released`, `talkface import-weights`) has the same layout: step 0, store_dir
None, extra["protocol"] "authors" (its generator follows the authors' preprocessing), and model.json says
"protocol": "authors", "trained_on" and the released files it came from ("sources": name, bytes, sha256).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from models.system import System
from models.weights import WEIGHTS_FORMAT, Released, read_weights

CARD_FILE = "model.json"
USAGE = "talkface generate --image FACE.jpg --audio SPEECH.wav --out OUT.mp4 --model <this model's URI>"


def _save_stage(out_dir: Path, system: System, stage: str, step: int, modules: dict, config: dict, extra: dict,
                store_dir: str | None) -> dict:
    """Write `<stage>.pt` ("talkface.weights/1"); returns its model.json entry."""
    torch.save({"format": WEIGHTS_FORMAT, "system": system.name, "stage": stage, "step": step, "modules": modules,
                "config": config, "extra": extra, "store_dir": store_dir}, out_dir / f"{stage}.pt")
    return {"stage": stage, "steps": int(step), "store_dir": store_dir}


def _inference_stages(system: System, available, missing: str) -> list:
    """The system's stages with inference modules. Raises KeyError `missing` (formatted with stage and system) for
    one not in `available`."""
    stages = [stage for stage in system.stages if stage.inference_modules]
    for stage in stages:
        if stage.name not in available:
            raise KeyError(missing.format(stage=stage.name, system=system.name))
    return stages


def _write_card(out_dir: Path, system: System, files: dict, meta: dict) -> Path:
    card = {"system": system.describe(), "format": WEIGHTS_FORMAT, "files": files, "usage": USAGE, **meta}
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return out_dir


def export_model(system: System, checkpoints: dict[str, Path], out_dir: Path, meta: dict | None = None) -> Path:
    """Write the model directory (module docstring) of `system` from each stage's final training checkpoint
    ({stage: path}, every stage with inference modules); returns it. meta: extra JSON-serialisable entries for
    model.json (store version, MLflow run id, ...). Raises KeyError naming a missing stage, ValueError when a
    checkpoint is another system's or stage's."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    given = {k for k, v in checkpoints.items() if v is not None}
    for stage in _inference_stages(system, given, "no {stage} checkpoint to export {system} from"):
        ckpt = read_weights(checkpoints[stage.name], system.name, stage.name)
        files[f"{stage.name}.pt"] = _save_stage(out_dir, system, stage.name, ckpt["step"],
                                                {k: ckpt["modules"][k] for k in stage.inference_modules},
                                                ckpt["config"], ckpt["extra"], ckpt["store_dir"])
    return _write_card(out_dir, system, files, meta or {})


def export_released(system: System, released: Released, out_dir: Path, meta: dict | None = None) -> Path:
    """Write the model directory (module docstring) of `system` from its authors' converted release
    (`System.importer`) into `out_dir`; returns it. meta: extra model.json entries (the released files' sources,
    MLflow run id, ...). Raises KeyError when a stage with inference modules or one of its modules is missing from
    the release."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for stage in _inference_stages(system, released.stages, "the released {system} has no {stage} weights"):
        part = released.stages[stage.name]
        files[f"{stage.name}.pt"] = _save_stage(out_dir, system, stage.name, 0,
                                                {k: part["modules"][k] for k in stage.inference_modules},
                                                part["config"], part["extra"], None)
    return _write_card(out_dir, system, files,
                       {"protocol": "authors", "trained_on": released.trained_on, **(meta or {})})


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
