"""Vougioukas et al. 2019 speed (IJCV): parameter counts, training samples/s of the temporal GAN, inference frames/s.

    make benchmark-sda                                             # CPU here (and the GPU, when the machine has one)
    .venv/bin/python benchmarks/sda_speed.py --device cuda --out /tmp/sda.json

What is measured (per device: the CPU always, CUDA when `torch.cuda.is_available()`; `--device` picks):

1. Parameters at the "paper" and "small" presets of the generator and the frame, sequence and sync discriminators
   (`models.sda.stages.SDAStage.modules`), beside the authors' released generator (about 55 M; spec §2).
2. Training, samples/s = batch / mean seconds per step of `tasks.training.train_stage` itself (the store-backed
   DataLoader; float32 on the CPU, bf16-mixed on CUDA): one sample is one clip of `--frames` frames (75, a whole
   GRID utterance, on CUDA; 16 on the CPU), one update of each of the three discriminators and one of G a step.
   `--steps` steps, the first `--warmup` left out; batch: the preset's (16 at the paper preset), 2 on the CPU.
3. Inference, frames/s = frames / median seconds of one `SDATalker` call (a real still `face_sda` crop and the
   first test clip's audio repeated to `--seconds` s), over `--repeats` calls after one warm-up call, including
   the audio windows and the uint8 frames back in host memory; random-init generator of the preset, float32. The
   paper: 7 ms a frame on a GPU, about 1 s a frame on a CPU.

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
from models.sda.inference import SDATalker  # noqa: E402
from models.sda.stages import SDAStage, SDATrainConfig  # noqa: E402
from storage.dataset import ClipReader, ok_clips  # noqa: E402
from tasks.training import Devices, train_stage  # noqa: E402

PRESETS = ("paper", "small")
REFERENCE_G = "about 55 M (the released weights; spec §2)"


def param_counts(preset: str) -> dict[str, int]:
    """Parameters of each network the stage builds at `preset` (module docstring, 1.)."""
    return {name: n_params(m) for name, m in SDAStage().modules(SDATrainConfig.preset(preset)).items()}


def training_figures(store_dir: Path, preset: str, device: str, steps: int, warmup: int, frames: int,
                     batch: int | None, cpu_threads: int, out_dir: Path) -> dict:
    """Samples/s of the stage at one preset (module docstring, 2.)."""
    fields = dict(steps=steps, max_frames=frames, cpu_threads=cpu_threads, checkpoint_every=0, sample_every=0)
    cfg = SDATrainConfig.preset(preset, **fields, **({"batch_size": batch} if batch else {}))
    stamps: list[float] = []
    result = train_stage("sda", SDAStage(), cfg, store_dir, out_dir / preset, Devices(accelerator=device),
                         on_step=lambda step, losses: stamps.append(time.perf_counter()))
    seconds = step_seconds(stamps, warmup)
    print(f"  {device} train sda {preset:5s} batch {cfg.batch_size:3d} x {frames} frames: {seconds:8.3f} s/step, "
          f"{cfg.batch_size / seconds:8.2f} samples/s", flush=True)
    return {"preset": preset, "batch": cfg.batch_size, "frames": frames, "steps": steps, "warmup": warmup,
            "step_s": seconds, "samples_per_s": cfg.batch_size / seconds, "device": result.device}


def inference_figures(store_dir: Path, preset: str, device: str, seconds: float, repeats: int) -> dict:
    """Frames/s of `SDATalker` at `preset` (module docstring, 3.)."""
    torch.manual_seed(0)
    generator = SDAStage().modules(SDATrainConfig.preset(preset))["generator"].to(device).eval()
    row = ok_clips(store_dir, "test").iloc[0]
    reader = ClipReader(store_dir)
    still, n = reader.crops(row, "face_sda")[0], int(round(seconds * 25))
    wave = np.resize(reader.audio(row), n * 640)
    talker = SDATalker(generator)
    assert talker(still, None, wave, n).shape == (n, 128, 96, 3)
    times = time_calls(lambda: talker(still, None, wave, n), torch.device(device), repeats, warmup=0)
    median = statistics.median(times)
    print(f"  {device} inference {preset:5s}: {n / median:9.1f} frames/s ({1000 * median / n:.1f} ms/frame, "
          f"median of {len(times)} calls of {n} frames)", flush=True)
    return {"preset": preset, "frames_per_call": n, "median_s": median, "ms_per_frame": 1000 * median / n,
            "fps": n / median, "times_s": times}


def markdown(report: dict) -> str:
    lines = ["| network | paper | small |", "|---|---|---|"]
    params = report["parameters"]
    for name in params["paper"]:
        note = f" (authors: {REFERENCE_G})" if name == "generator" else ""
        lines.append(f"| {name}{note} | {params['paper'][name] / 1e6:.2f} M | {params['small'][name] / 1e6:.2f} M |")
    for device, figures in report["devices"].items():
        lines += ["", f"{device} ({figures['hardware']}):", "", "| preset | train samples/s (batch × frames) | "
                  "inference frames/s (ms/frame) |", "|---|---|---|"]
        for t, i in zip(figures["train"], figures["inference"]):
            lines.append(f"| {t['preset']} | {t['samples_per_s']:.2f} ({t['batch']} × {t['frames']}) | "
                         f"{i['fps']:.1f} ({i['ms_per_frame']:.1f}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    store_and_device_arguments(ap)
    ap.add_argument("--presets", default="paper,small")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default 4 on the CPU, 30 on CUDA)")
    ap.add_argument("--warmup", type=int, default=None, help="leading steps left out (default 1 CPU, 5 CUDA)")
    ap.add_argument("--frames", type=int, default=None, help="frames per sample (default 16 CPU, 75 CUDA)")
    ap.add_argument("--cpu-batch", type=int, default=2, help="batch on the CPU (the GPU uses the preset's)")
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
    with tempfile.TemporaryDirectory(prefix="sda-speed-") as tmp:
        for device in devices:
            gpu = device == "cuda"
            steps, warmup = args.steps or (30 if gpu else 4), args.warmup or (5 if gpu else 1)
            frames = args.frames or (75 if gpu else 16)
            report["devices"][device] = {
                "hardware": hardware_name(device),
                "train": [training_figures(store_dir, p, device, steps, warmup, frames, None if gpu else args.cpu_batch,
                                           cpu_threads, Path(tmp)) for p in presets],
                "inference": [inference_figures(store_dir, p, device, args.seconds, args.repeats) for p in presets]}
    print(markdown(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
