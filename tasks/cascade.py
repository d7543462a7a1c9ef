"""The trained ATVGnet cascade as one model directory, and finding the checkpoints a training run resumes from
(AT-net, VG-net and SyncNet stages).
Pure: no Prefect, no MLflow (the flow logs the directory and registers it as the MLflow model `atvgnet`).

Model directory (inference only: no optimizer or RNG state), each file read with `torch.load(weights_only=True)`:
    atnet.pt     "talkface.atnet/1": step, model, model_config, config, pca, store_dir (`tasks.train_atnet`)
    vgnet.pt     "talkface.vgnet/1": step, generator, generator_config, config, store_dir (`tasks.train_vgnet`)
    model.json   what the two are: formats, steps, store version, image size, how to generate with it
`tasks.generate.generate(image, audio, out, model_dir / "atnet.pt", model_dir / "vgnet.pt")` renders with it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from tasks import train_atnet, train_syncnet, train_vgnet

ATNET_FILE, VGNET_FILE, CARD_FILE = "atnet.pt", "vgnet.pt", "model.json"
STAGES = {"atnet": train_atnet.CHECKPOINT_FORMAT, "vgnet": train_vgnet.CHECKPOINT_FORMAT,
          "syncnet": train_syncnet.CHECKPOINT_FORMAT}  # training stages whose checkpoints a run resumes from
_STEP = re.compile(r"^(atnet|vgnet|syncnet)-step(\d+)\.pt$")
_INFERENCE_KEYS = {
    "atnet": ("format", "step", "model", "model_config", "config", "pca", "store_dir"),
    "vgnet": ("format", "step", "generator", "generator_config", "config", "store_dir"),
}


def checkpoint_stage(path: Path) -> str:
    """"atnet" or "vgnet": which training stage wrote the checkpoint (its "format" entry).
    Raises FileNotFoundError when missing, ValueError when it is not a talkface training checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        fmt = torch.load(path, map_location="cpu", weights_only=True).get("format")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's
        raise ValueError(f"{path}: not a readable torch checkpoint ({exc})") from None
    for stage, expected in STAGES.items():
        if fmt == expected:
            return stage
    raise ValueError(f"{path}: not a talkface checkpoint (format {fmt!r}; expected one of {sorted(STAGES.values())})")


def latest_names(names: list[str]) -> dict[str, str | None]:
    """{stage: name} for each of `STAGES`: of file names or paths like `<stage>-stepNNNNNN.pt`, the highest step of
    each stage (None where there is none); other names are ignored."""
    found: dict[str, tuple[int, str] | None] = dict.fromkeys(STAGES)
    for name in names:
        m = _STEP.match(Path(name).name)
        if m and (found[m[1]] is None or int(m[2]) > found[m[1]][0]):
            found[m[1]] = (int(m[2]), name)
    return {stage: (hit[1] if hit else None) for stage, hit in found.items()}


def latest_checkpoints(folder: Path) -> dict[str, Path | None]:
    """{stage: path} of the highest-step `<stage>-stepNNNNNN.pt` in `folder` for each of `STAGES` (None where there
    is none; a missing folder gives all None)."""
    names = [str(p) for p in Path(folder).glob("*-step*.pt")] if Path(folder).is_dir() else []
    return {stage: (Path(name) if name else None) for stage, name in latest_names(names).items()}


def resume_points(checkpoint: Path) -> dict[str, Path | None]:
    """Where a two-stage run continues when given one checkpoint: that checkpoint for its own stage and, for the
    other stage, the latest checkpoint beside it (a VG-net checkpoint is resumed with the AT-net its run trained).
    Raises as `checkpoint_stage`."""
    stage = checkpoint_stage(checkpoint)
    points = latest_checkpoints(Path(checkpoint).parent)
    points[stage] = Path(checkpoint)
    if stage == "atnet":
        points["vgnet"] = None  # VG-net training starts after the AT-net stage, which is not finished
    return points


def export_model(atnet_checkpoint: Path, vgnet_checkpoint: Path, out_dir: Path, meta: dict | None = None) -> Path:
    """Write the model directory (module docstring) from the two stages' final training checkpoints; returns it.
    meta: extra JSON-serialisable entries for model.json (store version, MLflow run id, ...).
    Raises ValueError when a checkpoint is of the wrong stage or the two disagree on the crop size."""
    atnet = train_atnet.load_checkpoint(atnet_checkpoint)
    vgnet = train_vgnet.load_checkpoint(vgnet_checkpoint)
    crop, image = int(atnet["pca"]["crop_size"]), int(vgnet["generator_config"]["image_size"])
    if crop != image:
        raise ValueError(f"AT-net landmarks are for {crop}-px crops but VG-net renders {image}-px faces")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, ckpt, stage in ((ATNET_FILE, atnet, "atnet"), (VGNET_FILE, vgnet, "vgnet")):
        torch.save({k: ckpt[k] for k in _INFERENCE_KEYS[stage]}, out_dir / name)
    card = {
        "model": "atvgnet",
        "paper": "Chen, Maddox, Duan, Xu. Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise "
                 "Loss. CVPR 2019",
        "files": {ATNET_FILE: STAGES["atnet"], VGNET_FILE: STAGES["vgnet"]},
        "atnet_steps": int(atnet["step"]),
        "vgnet_steps": int(vgnet["step"]),
        "image_size": image,
        "store_dir": str(vgnet["store_dir"]),
        "usage": "talkface generate --image FACE.jpg --audio SPEECH.wav --out OUT.mp4 --model <this model's URI>",
        **(meta or {}),
    }
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return out_dir


def model_files(model_dir: Path) -> tuple[Path, Path]:
    """(atnet.pt, vgnet.pt) of a model directory. Raises FileNotFoundError naming what is missing."""
    model_dir = Path(model_dir)
    missing = [name for name in (ATNET_FILE, VGNET_FILE) if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} is not an atvgnet model directory: no {', '.join(missing)}")
    return model_dir / ATNET_FILE, model_dir / VGNET_FILE
