"""Lip GAN speed (Chen et al. ECCV 2018): parameter counts, training samples/s of its three stages, inference frames/s
and the peak memory of one paper-size GAN step.

    make benchmark-lipgan                                          # CPU here (and the GPU, when the machine has one)
    .venv/bin/python benchmarks/lipgan_speed.py --device cuda      # on a GPU machine: the GPU figures only
    .venv/bin/python benchmarks/lipgan_speed.py --no-peak-memory --presets small --out /tmp/lipgan.json

What is measured (per device: the CPU always, CUDA when `torch.cuda.is_available()`; `--device` picks):

1. Parameters (device-independent), at the "paper" and "small" presets, of the networks the stages build:
   generator G, three-stream and two-stream discriminator D, φ_s (audio-derivative encoder) and φ_v (motion
   encoder), all from `models.lipgan.stages.motion_configs` so that D's motion stream and φ_v are the trained ones
   (the default motion "flow_distilled"), the perceptual mouth autoencoder (encoder and decoder) and the flow net F.
   Beside G: the authors' "about 16.6 M" (`shared/specs/chen2018-lipgan.md` §2).
2. Training, samples/s = batch / mean seconds per step of `tasks.training.train_stage` itself (the store-backed
   DataLoader with `--num-workers` workers; float32 on the CPU, bf16-mixed on CUDA) for each stage in order:
   flownet (samples = clips of T frames), perceptual (samples = single mouth frames), lipgan (samples = clips of T
   frames; one D and one G + φ_s + φ_v update a step). Seconds per step from the `on_step` timestamps, the first
   `--*-warmup` steps left out. The lipgan stage is given the checkpoints the flownet and perceptual runs just
   wrote (speed does not depend on the weights). Per preset: `--small-steps/--small-warmup/--small-batch` and
   `--paper-steps/--paper-warmup/--paper-batch` (batch: the same for all three stages; default the stage preset's,
   except on the CPU at the paper preset, 2, as a paper-size GAN step is slow there).
3. Inference, frames/s = frames / median seconds of one `LipGANTalker` call over `--repeats` calls after one
   warm-up call, with B windows of T frames per forward pass for B in `--batches` (default 1 and 8): each call
   renders `--windows` windows (default 8, so 8·T frames: 128 at the paper preset, 64 at the small one) of a real
   still mouth (the store's first test clip, `ClipReader.crops(row, "mouth")[0]`) and that clip's audio repeated to
   the length, including the log-mel of the audio, and the uint8 frames back in host memory (resized to 64×64 at
   the small preset, as the talker delivers them). Random-init generator of the preset; the train split's log-mel
   statistics (`models.lipgan.data.mel_statistics`). Float32 on both devices (the talker does not autocast).
4. Peak memory of ONE paper-preset lipgan training step at batch `--peak-batch` (24, the paper's), the frozen
   flow net and encoder included, on one batch already in memory (`tasks.training.fixed_batch_step_times`, no
   DataLoader), in GiB (2^30 bytes):
   - CUDA: `torch.cuda.max_memory_allocated()` over the step(s), in this process, and the same over the set-up
     alone (modules, optimizers, frozen nets, the batch on the device; `steps=0`);
   - CPU: the peak RSS of a child process running this script's hidden `--peak-child` mode, and of a baseline
     child doing the same set-up with `steps=0`; their difference is what the step itself adds. The peak is the
     child's own `VmHWM` (/proc/self/status), not `ru_maxrss`: on Linux `ru_maxrss` (RUSAGE_SELF or _CHILDREN) keeps
     the high-water mark of the process image before `exec`, i.e. of this (v)forking parent, so a child reports at
     least the parent's peak. The child also reports the step's seconds (timed inside the stage's `step`).
   `--no-peak-memory` skips it. On the 2-vCPU development machine (1 thread, CPUs shared with other work) that one
   step took 530 s (13.5 GiB peak RSS, 1.0 GiB of it the set-up), hence `--peak-steps` 1; a whole default run
   about 17 minutes, most of it that step and the paper preset's GAN steps (41 s each at batch 2).

The store: `--store`, else the GRID clips bundled in `samples/grid` built into `--data-root` (default
`data/bench`; a no-op once built), as `benchmarks/atvgnet_speed.py` does (its helpers are reused).
`--cpu-threads`: torch intra-op threads, 1 on a machine with at most 2 cores (OpenMP threads on a small shared CPU
spin against each other and other processes), torch's default elsewhere.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.atvgnet_speed import (  # noqa: E402
    hardware_name, n_params, resolve_store, step_seconds, store_and_device_arguments, sync, time_calls,
)
from models.lipgan.data import mel_statistics  # noqa: E402
from models.lipgan.discriminator import TwoStreamDiscriminator  # noqa: E402
from models.lipgan.inference import LipGANTalker  # noqa: E402
from models.lipgan.stages import (  # noqa: E402
    FlowNetStage, FlowNetTrainConfig, LipGANStage, LipGANTrainConfig, PerceptualStage, PerceptualTrainConfig,
    motion_configs,
)
from storage.dataset import ClipReader, ok_clips  # noqa: E402
from tasks.training import Devices, fixed_batch_step_times, train_stage  # noqa: E402

SYSTEM = "lipgan"
PRESETS = ("paper", "small")
REFERENCE_G = "about 16.6 M (spec §2)"
SAMPLES_PER_FRAME = 640  # 16 kHz audio at 25 frames/s
GIB = 2**30


def stages() -> tuple:
    return FlowNetStage(), PerceptualStage(), LipGANStage()


def configs(preset: str, **fields) -> dict:
    """{stage name: its training config at `preset`} with `fields` replaced in each (a `batch_size` of None
    keeps the preset's)."""
    if fields.get("batch_size") is None:
        fields.pop("batch_size", None)
    return {stage.name: stage.Config.preset(preset, **fields) for stage in stages()}


# ---------------------------------------------------------------------------------------------------- parameters


def param_counts(preset: str) -> dict[str, int]:
    """Parameters of each network at `preset` (module docstring, 1.)."""
    cfg = LipGANTrainConfig.preset(preset)
    gan = LipGANStage().modules(cfg)  # G, three-stream D, φ_s, φ_v with the trained motion input
    disc, _ = motion_configs(cfg)
    return {"generator": n_params(gan["generator"]),
            "discriminator_three_stream": n_params(gan["discriminator"]),
            "discriminator_two_stream": n_params(TwoStreamDiscriminator(disc)),
            "phi_s": n_params(gan["phi_s"]), "phi_v": n_params(gan["phi_v"]),
            "perceptual_autoencoder": n_params(PerceptualStage().modules(PerceptualTrainConfig.preset(preset))
                                               ["autoencoder"]),
            "flownet": n_params(FlowNetStage().modules(FlowNetTrainConfig.preset(preset))["flownet"])}


# ------------------------------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class TrainRun:
    """One preset's training measurement: steps per stage, leading steps left out, batch (None: the preset's)."""

    preset: str
    steps: int
    warmup: int
    batch: int | None


def training_figures(store_dir: Path, run: TrainRun, device: str, num_workers: int, cpu_threads: int,
                     out_dir: Path) -> tuple[list[dict], dict[str, Path]]:
    """Samples/s of each stage at one preset (module docstring, 2.), and {stage: its last checkpoint} (the lipgan
    run is given the flownet and perceptual ones)."""
    cfgs = configs(run.preset, steps=run.steps, batch_size=run.batch, num_workers=num_workers,
                   cpu_threads=cpu_threads, checkpoint_every=0, sample_every=0)
    rows, checkpoints = [], {}
    for stage in stages():
        cfg = cfgs[stage.name]
        inputs = {used.name: checkpoints[used.name] for used, _ in stage.uses(cfg).values()}
        stamps: list[float] = []
        result = train_stage(SYSTEM, stage, cfg, store_dir, out_dir / run.preset, Devices(accelerator=device),
                             on_step=lambda step, losses: stamps.append(time.perf_counter()), inputs=inputs)
        checkpoints[stage.name] = result.last_checkpoint
        seconds = step_seconds(stamps, run.warmup)
        rows.append({"stage": stage.name, "preset": run.preset, "batch": cfg.batch_size, "steps": run.steps,
                     "warmup": run.warmup, "timed_steps": run.steps - max(run.warmup, 1), "step_s": seconds,
                     "samples_per_s": cfg.batch_size / seconds, "device": result.device})
        print(f"  {device} train {stage.name:10s} {run.preset:5s} batch {cfg.batch_size:3d}: {seconds:8.3f} s/step, "
              f"{cfg.batch_size / seconds:8.2f} samples/s", flush=True)
    return rows, checkpoints


def upstream_checkpoints(store_dir: Path, preset: str, device: str, cpu_threads: int, out_dir: Path
                         ) -> dict[str, Path]:
    """1-step runs of flownet and perceptual at `preset` (batch 2): the checkpoints the lipgan stage uses."""
    cfgs = configs(preset, steps=1, batch_size=2, cpu_threads=cpu_threads, checkpoint_every=0, sample_every=0)
    return {stage.name: train_stage(SYSTEM, stage, cfgs[stage.name], store_dir, out_dir, Devices(accelerator=device)
                                    ).last_checkpoint for stage in stages()[:2]}


# ----------------------------------------------------------------------------------------------------- inference


def inference_figures(store_dir: Path, preset: str, device: str, batches: list[int], windows: int, repeats: int
                      ) -> list[dict]:
    """Frames/s of `LipGANTalker` at `preset` for each windows-per-forward batch (module docstring, 3.)."""
    cfg = LipGANTrainConfig.preset(preset)
    torch.manual_seed(0)
    generator = LipGANStage().modules(cfg)["generator"].to(device).eval()
    stats = mel_statistics(store_dir, "train", cfg.generator.n_mels)
    row = ok_clips(store_dir, "test").iloc[0]
    reader = ClipReader(store_dir)
    still = reader.crops(row, "mouth")[0]  # uint8 (64, 64, 3)
    n = windows * cfg.T
    wave = np.resize(reader.audio(row), n * SAMPLES_PER_FRAME)  # the clip's audio repeated to n frames
    rows = []
    for b in batches:
        talker = LipGANTalker(generator, stats, cfg.T, b)
        frames = talker(still, None, wave, n)
        assert frames.shape == (n, 64, 64, 3) and frames.dtype == np.uint8, frames.shape
        times = time_calls(lambda: talker(still, None, wave, n), torch.device(device), repeats, warmup=0)
        median = statistics.median(times)
        rows.append({"preset": preset, "batch": b, "T": cfg.T, "frames_per_call": n, "median_s": median,
                     "times_s": times, "fps": n / median})
        print(f"  {device} inference {preset:5s} batch {b:3d}: {n / median:9.1f} frames/s "
              f"(median {median * 1000:.1f} ms of {len(times)} calls of {n} frames)", flush=True)
    return rows


# -------------------------------------------------------------------------------------------------- peak memory


class TimedLipGANStage(LipGANStage):
    """The lipgan stage, its `step` timed: the seconds of each step (the device synchronised) appended to
    `seconds`."""

    def __init__(self, device: str):
        self.device, self.seconds = torch.device(device), []

    def step(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = super().step(*args, **kwargs)
        sync(self.device)
        self.seconds.append(time.perf_counter() - t0)
        return out


def one_step(store_dir: Path, device: str, batch: int, steps: int, inputs: dict[str, Path], cpu_threads: int
             ) -> list[float]:
    """`steps` paper-preset lipgan steps at `batch` on one in-memory batch (`steps=0`: the set-up only); the
    seconds of each step."""
    cfg = LipGANTrainConfig.preset("paper", steps=steps, batch_size=batch, cpu_threads=cpu_threads,
                                   checkpoint_every=0, sample_every=0)
    stage = TimedLipGANStage(device)
    fixed_batch_step_times(stage, cfg, store_dir, Devices(accelerator=device), system=SYSTEM, inputs=inputs)
    return stage.seconds


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB: `VmHWM` of /proc/self/status (this process image's own
    high-water mark), else `ru_maxrss` (which on Linux includes the image before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_child(args: argparse.Namespace) -> None:
    """The hidden `--peak-child` mode: one_step in this process, then its peak RSS as a `PEAK=` JSON line."""
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    inputs = dict(kv.split("=", 1) for kv in args.peak_inputs.split(","))
    seconds = one_step(args.store, "cpu", args.peak_batch, args.peak_steps if args.peak_child == "step" else 0,
                       {k: Path(v) for k, v in inputs.items()}, args.cpu_threads)
    rss_kib = peak_rss_kib()
    print("PEAK=" + json.dumps({"mode": args.peak_child, "max_rss_kib": rss_kib, "step_s": seconds}), flush=True)


def run_child(mode: str, store_dir: Path, batch: int, steps: int, inputs: dict[str, Path], cpu_threads: int) -> dict:
    """This script in `--peak-child mode` in a fresh process; its PEAK= report."""
    cmd = [sys.executable, __file__, "--peak-child", mode, "--store", str(store_dir), "--peak-batch", str(batch),
           "--peak-steps", str(steps), "--cpu-threads", str(cpu_threads),
           "--peak-inputs", ",".join(f"{k}={v}" for k, v in inputs.items())]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PEAK=")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"peak-memory child ({mode}) failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {**json.loads(lines[-1][len("PEAK="):]), "wall_s": time.perf_counter() - t0}


def peak_memory(store_dir: Path, device: str, batch: int, steps: int, cpu_threads: int, out_dir: Path) -> dict:
    """Peak memory of one paper-preset lipgan step at `batch` (module docstring, 4.), GiB."""
    inputs = upstream_checkpoints(store_dir, "paper", device, cpu_threads, out_dir / "peak")
    if device == "cuda":
        figures = {}
        for mode, n in (("baseline", 0), ("step", steps)):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            seconds = one_step(store_dir, device, batch, n, inputs, cpu_threads)
            figures[mode] = {"peak_gib": torch.cuda.max_memory_allocated() / GIB, "step_s": seconds}
        what = "torch.cuda.max_memory_allocated"
    else:
        figures = {}
        for mode, n in (("baseline", 0), ("step", steps)):
            child = run_child(mode, store_dir, batch, n, inputs, cpu_threads)
            figures[mode] = {"peak_gib": child["max_rss_kib"] * 1024 / GIB, "step_s": child["step_s"],
                             "wall_s": child["wall_s"]}
            print(f"  cpu peak-memory child {mode:8s}: peak RSS {figures[mode]['peak_gib']:.2f} GiB, "
                  f"{child['wall_s']:.0f} s, steps {[round(s, 1) for s in child['step_s']]} s", flush=True)
        what = "peak RSS (VmHWM) of a child process"
    step, base = figures["step"], figures["baseline"]
    out = {"device": device, "preset": "paper", "batch": batch, "steps": steps, "measure": what,
           "peak_gib": step["peak_gib"], "baseline_gib": base["peak_gib"],
           "step_adds_gib": step["peak_gib"] - base["peak_gib"],
           "step_s": step["step_s"][0] if step["step_s"] else float("nan"), "children": figures}
    print(f"  {device} peak memory, paper lipgan step at batch {batch}: {out['peak_gib']:.2f} GiB "
          f"(set-up alone {out['baseline_gib']:.2f} GiB; one step {out['step_s']:.1f} s)", flush=True)
    return out


# -------------------------------------------------------------------------------------------------------- report


def params_table(params: dict[str, dict[str, int]]) -> str:
    names = {"generator": "generator G", "discriminator_three_stream": "discriminator D, three-stream",
             "discriminator_two_stream": "discriminator D, two-stream", "phi_s": "φ_s (audio derivative encoder)",
             "phi_v": "φ_v (motion encoder)", "perceptual_autoencoder": "perceptual mouth autoencoder",
             "flownet": "flow net F"}
    lines = ["| network | paper | small | authors |", "|---|---:|---:|---|"]
    for key, label in names.items():
        ref = REFERENCE_G if key == "generator" else ""
        lines.append(f"| {label} | {params['paper'][key] / 1e6:.3f} M | {params['small'][key] / 1e6:.3f} M | {ref} |")
    return "\n".join(lines)


def device_table(result: dict) -> str:
    """Markdown of one device's figures."""
    d = result["device"]
    precision = "bf16-mixed training, float32 inference" if d == "cuda" else "float32"
    lines = [f"### {d}: {result['hardware']}", "", f"{precision}, torch threads {result['torch_threads']}, "
             f"DataLoader workers {result['num_workers']}", "",
             "| figure | preset | batch | value | detail |", "|---|---|---:|---:|---|"]
    for r in result["training"]:
        lines.append(f"| training {r['stage']}, samples/s | {r['preset']} | {r['batch']} | {r['samples_per_s']:,.2f} | "
                     f"{r['step_s']:.3f} s/step, mean of {r['timed_steps']} steps after {r['warmup']} |")
    for r in result["inference"]:
        lines.append(f"| inference LipGANTalker, frames/s | {r['preset']} | {r['batch']} | {r['fps']:,.1f} | "
                     f"{r['frames_per_call']} frames (T {r['T']}) a call, median {r['median_s'] * 1000:.1f} ms of "
                     f"{len(r['times_s'])} |")
    p = result.get("peak_memory")
    if p:
        lines.append(f"| peak memory of one lipgan step, GiB | paper | {p['batch']} | {p['peak_gib']:.2f} | "
                     f"{p['measure']}; set-up alone {p['baseline_gib']:.2f} GiB, the step adds "
                     f"{p['step_adds_gib']:.2f} GiB; step {p['step_s']:.1f} s |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    store_and_device_arguments(ap)
    ap.add_argument("--presets", default="small,paper", help="training and inference presets, comma-separated")
    ap.add_argument("--small-steps", type=int, default=12, help="training steps per stage, small preset (12)")
    ap.add_argument("--small-warmup", type=int, default=2, help="leading steps left out, small preset (2)")
    ap.add_argument("--small-batch", type=int, help="training batch of every stage, small preset (the preset's)")
    ap.add_argument("--paper-steps", type=int, help="training steps per stage, paper preset (3 cpu, 20 cuda)")
    ap.add_argument("--paper-warmup", type=int, help="leading steps left out, paper preset (1 cpu, 5 cuda)")
    ap.add_argument("--paper-batch", type=int,
                    help="training batch of every stage, paper preset (2 on the cpu, the preset's on cuda)")
    ap.add_argument("--num-workers", type=int, help="DataLoader workers (default 0 cpu, 4 cuda)")
    ap.add_argument("--batches", default="1,8", help="inference windows per forward pass, comma-separated")
    ap.add_argument("--windows", type=int, default=8, help="windows of T frames an inference call renders (8)")
    ap.add_argument("--repeats", type=int, default=5, help="timed inference calls per figure (5)")
    ap.add_argument("--peak-memory", action=argparse.BooleanOptionalAction, default=True,
                    help="measure the peak memory of one paper lipgan step (default on; minutes on a small CPU)")
    ap.add_argument("--peak-batch", type=int, default=24, help="batch of that step (24, the paper's)")
    ap.add_argument("--peak-steps", type=int, default=1, help="steps of that measurement (1)")
    ap.add_argument("--cpu-threads", type=int, default=1 if (os.cpu_count() or 1) <= 2 else 0,
                    help="torch intra-op threads, 0 = torch's default (default: 1 on <= 2 cores, else 0)")
    ap.add_argument("--out", type=Path, help="also write every figure here as JSON")
    ap.add_argument("--peak-child", choices=("baseline", "step"), help=argparse.SUPPRESS)
    ap.add_argument("--peak-inputs", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def train_runs(args: argparse.Namespace, device: str) -> list[TrainRun]:
    cuda = device == "cuda"
    paper = TrainRun("paper", args.paper_steps or (20 if cuda else 3),
                     args.paper_warmup if args.paper_warmup is not None else (5 if cuda else 1),
                     args.paper_batch or (None if cuda else 2))
    small = TrainRun("small", args.small_steps, args.small_warmup, args.small_batch)
    return [r for r in (small, paper) if r.preset in args.presets.split(",")]


def measure_device(args: argparse.Namespace, store_dir: Path, device: str, tmp: Path) -> dict:
    """Every figure of one device (module docstring, 2. to 4.)."""
    num_workers = args.num_workers if args.num_workers is not None else (4 if device == "cuda" else 0)
    result = {"device": device, "hardware": hardware_name(device), "torch_threads": torch.get_num_threads(),
              "num_workers": num_workers, "training": [], "inference": []}
    print(f"{device} ({result['hardware']}):", flush=True)
    for run in train_runs(args, device):
        rows, _ = training_figures(store_dir, run, device, num_workers, args.cpu_threads, tmp / device)
        result["training"] += rows
    batches = [int(b) for b in args.batches.split(",")]
    for preset in [p for p in PRESETS[::-1] if p in args.presets.split(",")]:
        result["inference"] += inference_figures(store_dir, preset, device, batches, args.windows, args.repeats)
    if args.peak_memory:
        result["peak_memory"] = peak_memory(store_dir, device, args.peak_batch, args.peak_steps, args.cpu_threads,
                                            tmp / device)
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.peak_child:
        return peak_child(args)
    has_cuda = torch.cuda.is_available()
    if args.device == "cuda" and not has_cuda:
        sys.exit("--device cuda: torch sees no CUDA device on this machine")
    devices = {"auto": ["cpu"] + (["cuda"] if has_cuda else []), "cpu": ["cpu"], "cuda": ["cuda"]}[args.device]
    store_dir = resolve_store(args.store, args.data_root)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    print(f"store {store_dir}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    t0 = time.perf_counter()
    params = {preset: param_counts(preset) for preset in PRESETS}
    with tempfile.TemporaryDirectory(prefix="talkface-lipgan-bench-") as tmp:
        results = [measure_device(args, store_dir, device, Path(tmp)) for device in devices]
    wall = time.perf_counter() - t0
    print(f"\n## Lip GAN speed (store `{store_dir.name}`, {wall:.0f} s)\n")
    print("Parameters (motion input: flow_distilled)\n\n" + params_table(params) + "\n")
    for result in results:
        print(device_table(result) + "\n")
    if "cuda" not in devices:
        print("no GPU on this machine: GPU figures not measured" if not has_cuda
              else "GPU not asked for (--device cpu): GPU figures not measured")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"store": str(store_dir), "torch": torch.__version__, "wall_s": wall,
                                        "params": params, "devices": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
