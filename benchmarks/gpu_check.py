"""The GPU check (`benchmarks/gpu_check.sh` runs it on a lent H100/H200, in under 8 minutes): for every registered
stage, training samples/s in bf16-mixed, peak GPU memory and the DataLoader's share of the step; for every system
that renders, inference frames/s at batch 1 and 64.

Imports only `models/`, the training engine and `storage/` (no Prefect, MLflow or dlib: the GPU machine has its
own Python with PyTorch and Lightning, plus the small wheels gpu_check.sh carries). Reads a real store: the bundled
GRID clips' store, built here beforehand (`gpu_check.sh --prepare`) and carried.

Per stage (the "paper" preset unless --preset; batch from the stage's preset unless --batch), in the order of
`system.stages`; a stage that uses earlier stages' networks (`Stage.uses`, e.g. the lip GAN's frozen flow net and
perceptual encoder) is given the final checkpoints of those stages' runs here (speed does not depend on weights):
- samples/s = global batch / mean step time of `tasks.training.train_stage` itself (the store-backed DataLoader
  with --num-workers spawned workers, bf16-mixed), over the steps after --warmup;
- peak memory = `torch.cuda.max_memory_allocated()` over that run;
- DataLoader share = 1 - (step time on one batch already on the device, reused) / (step time with the DataLoader):
  the part of a step spent waiting for data (0 = loading is free).
Per rendering system: frames/s = frames / seconds of one generator call on a test clip's still (the generator's own
crop, `generator.crop.field`: the face for ATVGnet, the mouth for the lip GAN; the face crop's landmarks with it, None
for other crops) and audio, with `batch` chunks of T frames per forward (T = the generator's `T`, else 16; B = 1 and
64), after one warm-up call. The model directory is exported from the stages' benchmark checkpoints.

    python benchmarks/gpu_check.py --store STORE [--device cuda] [--steps 40] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.registry import SYSTEMS  # noqa: E402
from storage.dataset import ClipReader, ok_clips  # noqa: E402
from tasks.training import Devices, fixed_batch_step_times, train_stage  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def mean_step(stamps: list[float], warmup: int) -> float:
    gaps = np.diff(stamps)[max(warmup, 1) - 1 :]
    return float(np.mean(gaps)) if len(gaps) else float("nan")


def stage_figures(system: str, stage, cfg, store: Path, device: str, warmup: int, out_dir: Path,
                  inputs: dict[str, Path]) -> tuple[dict, Path]:
    """samples/s, peak memory and DataLoader share of one stage (module docstring), and the run's final checkpoint
    (in `out_dir`). inputs: {stage name: checkpoint} of the earlier stages this one uses."""
    devices = Devices(accelerator=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stamps: list[float] = []
    result = train_stage(system, stage, cfg, store, out_dir, devices, inputs=inputs,
                         on_step=lambda step, values: stamps.append(time.perf_counter()))
    loader_s = mean_step(stamps, warmup)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")

    memory_s = mean_step(fixed_batch_step_times(stage, cfg, store, devices, system=system, inputs=inputs), warmup)
    row = {"system": system, "stage": stage.name, "batch": cfg.batch_size, "steps": cfg.steps,
           "samples_per_s": cfg.batch_size / loader_s, "step_s": loader_s, "in_memory_step_s": memory_s,
           "dataloader_share": max(0.0, 1.0 - memory_s / loader_s), "peak_gib": peak, "device": result.device}
    return row, result.last_checkpoint


def inference_figures(system, model_dir: Path, store: Path, device: str, batches: list[int]) -> list[dict]:
    """frames/s of the system's generator at each batch (module docstring)."""
    generator = system.generator.load(model_dir, device)
    row = ok_clips(store, "test").iloc[0]
    reader = ClipReader(store)
    crop = system.generator.crop.field  # "face" (ATVGnet), "mouth" (the lip GAN)
    still = reader.crops(row, crop)[0]
    points = reader.landmarks(row)[0] if crop == "face" else None  # face-crop pixels; a mouth generator ignores them
    audio = reader.audio(row)
    T = getattr(generator, "T", 16)  # frames per chunk the generator renders in one forward per batch item
    rows = []
    for b in batches:
        generator.batch = b
        n = T * b
        wave = np.resize(audio, n * 640)  # the clip's audio repeated to n frames
        generator(still, points, wave, n)  # warm-up (cudnn autotuning, allocations)
        sync(torch.device(device))
        t0 = time.perf_counter()
        generator(still, points, wave, n)
        sync(torch.device(device))
        seconds = time.perf_counter() - t0
        rows.append({"system": system.name, "batch": b, "frames": n, "frames_per_s": n / seconds})
    return rows


def export_untrained(system, checkpoints: dict[str, Path], out_dir: Path) -> Path:
    """A model directory of `system` from the final checkpoints of its stages' short benchmark runs ({stage: path};
    speed does not depend on the weights)."""
    from tasks.model_dir import export_model

    return export_model(system, checkpoints, out_dir / "model")


def table(stages: list[dict], inference: list[dict], device_name: str) -> str:
    lines = [f"GPU check on {device_name}\n", "| stage | batch | samples/s | s/step | DataLoader share | peak GiB |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['system']}/{r['stage']} | {r['batch']} | {r['samples_per_s']:.1f} | {r['step_s']:.3f} | "
              f"{r['dataloader_share']:.2f} | {r['peak_gib']:.2f} |" for r in stages]
    lines += ["", "| system | batch (T-frame chunks) | frames/s |", "|---|---|---|"]
    lines += [f"| {r['system']} | {r['batch']} | {r['frames_per_s']:.0f} |" for r in inference]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--preset", default=None, help="paper (default on cuda) or small (default on cpu)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=None, help="global batch of every stage (default: the preset's)")
    ap.add_argument("--num-workers", type=int, default=4)
    ap.add_argument("--batches", default="1,64", help="inference batch sizes")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    preset = args.preset or ("paper" if args.device == "cuda" else "small")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    stages, inference = [], []
    for system in SYSTEMS.values():
        with tempfile.TemporaryDirectory(prefix=f"talkface-gpu-{system.name}-") as tmp:
            checkpoints: dict[str, Path] = {}  # each stage's final checkpoint: the inputs of the stages after it
            for stage in system.stages:
                fields = {"steps": args.steps, "checkpoint_every": 0, "sample_every": 0,
                          "num_workers": args.num_workers, **({"batch_size": args.batch} if args.batch else {})}
                cfg = stage.Config.preset(preset, **fields)
                inputs = {used.name: checkpoints[used.name] for used, _ in stage.uses(cfg).values()}
                row, checkpoints[stage.name] = stage_figures(system.name, stage, cfg, args.store, args.device,
                                                             args.warmup, Path(tmp) / "ckpt", inputs)
                stages.append(row)
                print(json.dumps(stages[-1]), flush=True)
            if system.generator is not None:
                model_dir = export_untrained(system, checkpoints, Path(tmp))
                inference += inference_figures(system, model_dir, args.store, args.device,
                                               [int(b) for b in args.batches.split(",")])
                print(json.dumps(inference[-len(args.batches.split(",")):]), flush=True)
    precision = "bf16-mixed" if args.device == "cuda" else "float32"
    report = table(stages, inference, f"{device_name}, preset {preset}, {precision}, {args.num_workers} DataLoader "
                                      "workers")
    print(report)
    if args.out:
        args.out.write_text(json.dumps({"stages": stages, "inference": inference, "table": report}, indent=2))


if __name__ == "__main__":
    main()
