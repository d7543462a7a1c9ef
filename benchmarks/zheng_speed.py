"""Zheng et al. 2020 speed (ICPR): parameter counts, training samples/s of its four stages, inference frames/s.

    make benchmark-zheng                                           # CPU here (and the GPU, when the machine has one)
    .venv/bin/python benchmarks/zheng_speed.py --device cuda --out /tmp/zheng.json

What is measured (per device: the CPU always, CUDA when `torch.cuda.is_available()`; `--device` picks):

1. Parameters of every network the four stages build (`models.zheng.stages`) at the "paper" and "small" presets.
2. Training, samples/s = batch / mean seconds per step of `tasks.training.train_stage` itself (the store-backed
   DataLoader; float32 on the CPU, bf16-mixed on CUDA), `--steps` steps with the first `--warmup` left out, in the
   system's order so A2L trains through the just-trained frozen detector and estimator. A sample is one 25-frame
   word window for word, mi and a2l, one frame for l2f (one D and one G update a step). Batch: the preset's (16),
   `--cpu-batch` on the CPU.
3. Inference, frames/s = frames / median seconds of one `ZhengGenerator` call (a real still face crop, its
   landmarks and the first test clip's audio repeated to `--seconds` s: MFCC, A2L over the utterance, L2F per
   frame, uint8 frames back in host memory), over `--repeats` calls after a warm-up call; random-init networks of
   the preset, float32.

The store: `--store`, else the bundled GRID clips built into `--data-root` (as `benchmarks/atvgnet_speed.py`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.atvgnet_speed import (  # noqa: E402
    hardware_name, n_params, resolve_store, step_seconds, store_and_device_arguments, time_calls,
)
from models.zheng import SYSTEM  # noqa: E402
from models.zheng.generator import ZhengGenerator  # noqa: E402
from storage.dataset import ClipReader, ok_clips  # noqa: E402
from tasks.training import Devices, train_stage  # noqa: E402

PRESETS = ("paper", "small")


def param_counts(preset: str) -> dict[str, int]:
    """Parameters of each network of each stage at `preset`, as "<stage>/<module>" (module docstring, 1.)."""
    return {f"{stage.name}/{name}": n_params(m) for stage in SYSTEM.stages
            for name, m in stage.modules(stage.Config.preset(preset)).items()}


def training_figures(store_dir: Path, preset: str, device: str, steps: int, warmup: int, batch: int | None,
                     cpu_threads: int, out_dir: Path) -> list[dict]:
    """Samples/s of each stage at one preset, trained in order (module docstring, 2.)."""
    rows, checkpoints = [], {}
    for stage in SYSTEM.stages:
        fields = dict(steps=steps, cpu_threads=cpu_threads, checkpoint_every=0, sample_every=0)
        cfg = stage.Config.preset(preset, **fields, **({"batch_size": batch} if batch else {}))
        stamps: list[float] = []
        result = train_stage("zheng", stage, cfg, store_dir, out_dir / preset / stage.name, Devices(accelerator=device),
                             on_step=lambda step, losses: stamps.append(time.perf_counter()),
                             inputs={used.name: checkpoints[used.name] for used, _ in stage.uses(cfg).values()})
        checkpoints[stage.name] = result.last_checkpoint
        seconds = step_seconds(stamps, warmup)
        unit = "frames" if stage.name == "l2f" else "25-frame windows"
        print(f"  {device} train {stage.name:4s} {preset:5s} batch {cfg.batch_size:3d} {unit}: {seconds:8.3f} s/step, "
              f"{cfg.batch_size / seconds:8.2f} samples/s", flush=True)
        rows.append({"stage": stage.name, "preset": preset, "batch": cfg.batch_size, "unit": unit, "steps": steps,
                     "warmup": warmup, "step_s": seconds, "samples_per_s": cfg.batch_size / seconds,
                     "device": result.device})
    return rows


def inference_figures(store_dir: Path, preset: str, device: str, seconds: float, repeats: int) -> dict:
    """Frames/s of `ZhengGenerator` at `preset` (module docstring, 3.)."""
    torch.manual_seed(0)
    a2l_stage, l2f_stage = SYSTEM.stage("a2l"), SYSTEM.stage("l2f")
    a2l = a2l_stage.modules(a2l_stage.Config.preset(preset))["a2l"].to(device).eval()
    l2f = l2f_stage.modules(l2f_stage.Config.preset(preset))["generator"].to(device).eval()
    row = ok_clips(store_dir, "test").iloc[0]
    reader = ClipReader(store_dir)
    still, points, n = reader.faces(row)[0], reader.landmarks(row)[0], int(round(seconds * 25))
    wave = np.resize(reader.audio(row), n * 640)
    talker = ZhengGenerator(a2l, l2f)
    assert talker(still, points, wave, n).shape == (n, 128, 128, 3)
    times = time_calls(lambda: talker(still, points, wave, n), torch.device(device), repeats, warmup=0)
    median = statistics.median(times)
    print(f"  {device} inference {preset:5s}: {n / median:9.1f} frames/s ({1000 * median / n:.1f} ms/frame, "
          f"median of {len(times)} calls of {n} frames)", flush=True)
    return {"preset": preset, "frames_per_call": n, "median_s": median, "ms_per_frame": 1000 * median / n,
            "fps": n / median, "times_s": times}


def markdown(report: dict) -> str:
    params = report["parameters"]
    lines = ["| network | paper | small |", "|---|---|---|"]
    lines += [f"| {name} | {params['paper'][name] / 1e6:.2f} M | {params['small'][name] / 1e6:.3f} M |"
              for name in params["paper"]]
    for device, figures in report["devices"].items():
        lines += ["", f"{device} ({figures['hardware']}):", "", "| preset | stage | train samples/s (batch) |",
                  "|---|---|---|"]
        lines += [f"| {t['preset']} | {t['stage']} | {t['samples_per_s']:.2f} ({t['batch']} {t['unit']}) |"
                  for t in figures["train"]]
        lines += ["", "| preset | inference frames/s (ms/frame) |", "|---|---|"]
        lines += [f"| {i['preset']} | {i['fps']:.1f} ({i['ms_per_frame']:.1f}) |" for i in figures["inference"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    store_and_device_arguments(ap)
    ap.add_argument("--presets", default="paper,small")
    ap.add_argument("--steps", type=int, default=None, help="training steps per stage (default 4 CPU, 30 CUDA)")
    ap.add_argument("--warmup", type=int, default=None, help="leading steps left out (default 1 CPU, 5 CUDA)")
    ap.add_argument("--cpu-batch", type=int, default=4, help="batch on the CPU (the GPU uses the preset's)")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of speech per inference call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, help="write the report as JSON here")
    args = ap.parse_args()
    store_dir = resolve_store(args.store, args.data_root)
    devices = ["cpu", "cuda"] if args.device == "auto" and torch.cuda.is_available() else (
        ["cpu"] if args.device == "auto" else [args.device])
    presets = [p for p in args.presets.split(",") if p]
    cpu_threads = 1 if (os.cpu_count() or 1) <= 2 else 0
    report = {"parameters": {p: param_counts(p) for p in PRESETS}, "devices": {}}
    with tempfile.TemporaryDirectory(prefix="zheng-speed-") as tmp:
        for device in devices:
            gpu = device == "cuda"
            steps, warmup = args.steps or (30 if gpu else 4), args.warmup or (5 if gpu else 1)
            report["devices"][device] = {
                "hardware": hardware_name(device),
                "train": [row for p in presets for row in training_figures(
                    store_dir, p, device, steps, warmup, None if gpu else args.cpu_batch, cpu_threads, Path(tmp))],
                "inference": [inference_figures(store_dir, p, device, args.seconds, args.repeats) for p in presets]}
    print(markdown(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
