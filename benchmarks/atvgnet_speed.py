"""ATVGnet speed: inference frames per second, VG-net training samples per second, and what the DataLoader costs.

    make benchmark-atvgnet                                         # CPU here (and the GPU, when the machine has one)
    .venv/bin/python benchmarks/atvgnet_speed.py --device cuda     # on a GPU machine: the GPU figures only
    .venv/bin/python benchmarks/atvgnet_speed.py --preset paper --batches 1,8 --device cpu --skip-train

What is measured, per device (CPU always; CUDA when `torch.cuda.is_available()`; `--device` picks):

1. Inference, frames/s = B x 16 / median seconds of one call over `--repeats` calls, after warm-up calls, for each B
   in `--batches` (default 1 and 64): B sequences of T = 16 frames per call, eval mode, `torch.inference_mode()`.
   - "vgnet": one VG-net forward (example face (B, 3, 128, 128), landmarks (B, 16, 136), example landmarks
     (B, 136) -> frames (B, 16, 3, 128, 128)), the frames left on the device;
   - "cascade": the whole generator per frame: AT-net on B utterances' MFCC windows (B, 16, 28, 12) -> PCA
     coefficients (B, 16, 6) -> boosted (omega) PCA reconstruction to (B, 16, 136) on the device -> VG-net ->
     uint8 RGB frames copied to host memory (as `tasks.generate.render_frames` delivers them).
   Inputs are real: faces, landmarks and MFCC windows of the store's train split (`VGNetDataset`, `ATNetDataset`).
   The networks are randomly initialised at the preset's sizes (speed does not depend on the weights). On CUDA
   the forwards run under bf16 autocast, with `cudnn.benchmark` on and `torch.cuda.synchronize()` around each
   timed call; on the CPU in float32.
2. VG-net training, samples/s = training clips of 16 frames per second: `tasks.training.train_stage` itself
   (the store-backed DataLoader with `--num-workers` workers, one discriminator and one generator Adam update per
   step, bf16-mixed on CUDA), batch `--train-batch`; seconds per step = the mean over the steps after
   `--train-warmup` warm-up steps, from `on_step` timestamps.
3. DataLoader ratio = training steps/s with the real DataLoader / steps/s with one batch already on the device,
   reused every step (`VGNetStage.step` on the same Fabric, the same two updates and the same per-step sync on the loss
   values). 1.0 means loading costs the training nothing. The two modes are interleaved (`--train-rounds` rounds,
   alternating which goes first) and each mode's median round counts, as the CPUs here are small and shared.

Targets (the issue; on an H100): >= 2,000 generated frames/s batched (the paper reports 34.5 FPS on a GTX 1080 Ti)
and a DataLoader ratio >= 0.95. They are printed next to the GPU figures.

The store: `--store` (a complete `<data-root>/stores/grid/<version>`), else the GRID clips bundled in
`samples/grid` are built into `--data-root` (default `data/bench`; a no-op once built) by the `build_dataset`
flow, in a child process so that Prefect's temporary server does not run beside the timings.

Defaults by device: preset "paper" on CUDA, "small" on the CPU (on one core of the 2-vCPU development machine the
paper-size VG-net renders 13-17 frames/s and one paper-size training step at batch 2 takes about 8 s); repeats
10 / 5; training batch 8 / 2, 30 / 12 steps a round, 3 rounds; DataLoader workers 4 on CUDA (a sample read afresh
from the store costs one worker about 20 ms on that machine, so a batch of 8 about 150 ms, and the loader must keep
up with a fast GPU), 0 on the CPU (there one worker measured the same ratio as none, and each round would pay its
start-up); `--cpu-threads` 1 on a machine with at most 2 cores (OpenMP threads on a small shared CPU spin against
each other and other processes: a training step was several times slower with 2 threads than with 1 on this
project's 2-vCPU machines), torch's default elsewhere.

Caveat on the DataLoader ratio: the bundled store has 13 training clips, fewer than a data process caches (16), so
after each clip's first read (about 20 ms for its 75 faces) every sample comes from memory; some first reads fall in
the timed steps of short rounds (on the CPU: ratio 0.95 with 12 steps a round, 0.985 with 40). A store much larger
than the cache reads nearly every sample afresh; `--cache-clips 1` measures that case on the small store (0.90 on
the CPU, 0 workers).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import default_collate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.atvgnet.at_net import ATNet, ATNetConfig  # noqa: E402
from models.atvgnet.discriminator import RegressionDiscriminator  # noqa: E402
from models.atvgnet.vg_net import VGNet, VGNetConfig  # noqa: E402
from storage import store  # noqa: E402
from models.atvgnet.data import ATNetDataset, VGNetDataset  # noqa: E402
from models.atvgnet.stages import VGNetStage, VGNetTrainConfig  # noqa: E402
from storage.landmark_pca import BOOST, load as load_pca  # noqa: E402
from tasks.training import Devices, fixed_batch_step_times, train_stage  # noqa: E402

BUNDLED_GRID = ROOT / "samples" / "grid"
T = 16  # frames per VG-net sequence (its training length)
TARGET_FPS = 2000.0  # generated frames/s, batched, H100
PAPER_FPS = 34.5  # ATVGnet paper, GTX 1080 Ti
TARGET_RATIO = 0.95  # DataLoader steps/s over in-memory steps/s


@dataclass(frozen=True)
class DeviceRun:
    """What to measure on one device (defaults from `device_defaults`, overridden by the command line)."""

    device: str  # "cpu" or "cuda"
    preset: str  # "paper" or "small"
    batches: tuple[int, ...]  # inference batch sizes (sequences of 16 frames per call)
    repeats: int  # timed inference calls per figure
    warmup: int  # untimed inference calls first
    train_batch: int  # clips per training step
    train_steps: int  # steps per training round (each mode)
    train_warmup: int  # leading steps of a round left out of its mean
    train_rounds: int  # interleaved rounds of (DataLoader, in-memory)
    num_workers: int  # DataLoader worker processes
    cpu_threads: int  # torch intra-op threads (0: torch's default)
    cache_clips: int = 16  # clips whose faces each data process keeps (the VG-net config's default)
    skip_train: bool = False


def device_defaults(device: str) -> dict:
    """The per-device defaults the module docstring lists."""
    if device == "cuda":
        return dict(preset="paper", repeats=10, warmup=3, train_batch=8, train_steps=30, train_warmup=5,
                    train_rounds=3, num_workers=4)
    return dict(preset="small", repeats=5, warmup=1, train_batch=2, train_steps=12, train_warmup=2, train_rounds=3,
                num_workers=0)


def hardware_name(device: str) -> str:
    """The GPU's name, or the CPU model from /proc/cpuinfo (with the core count)."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------------- the store


BUILD_SCRIPT = """
import sys
from pathlib import Path
from flows.build_dataset import BuildParams, build_dataset
print("STORE=" + build_dataset(BuildParams(dataset="grid", raw_root=Path(sys.argv[1]), data_root=Path(sys.argv[2]),
                                          workers=int(sys.argv[3]))))
"""


def build_bundled_store(data_root: Path, raw_root: Path = BUNDLED_GRID, workers: int = 1) -> Path:
    """Build GRID clips (the bundled ones unless `raw_root` says otherwise) into `data_root` with the `build_dataset`
    flow and `workers` shard builders (a no-op when already built), in a child process (Prefect starts a temporary
    server there, gone before any timing). Returns the store's path."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GX_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "true"}
    print(f"building the GRID clips of {raw_root} into {data_root} ...", flush=True)
    proc = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(raw_root), str(data_root), str(workers)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("STORE=")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"building the bundled store failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return Path(lines[-1][len("STORE="):])


def resolve_store(store_arg: Path | None, data_root: Path) -> Path:
    if store_arg is None:
        return build_bundled_store(data_root.resolve())
    if not store.is_complete(store_arg):
        sys.exit(f"{store_arg} is not a complete store (no card.json); build one with `talkface build`")
    return store_arg


# ------------------------------------------------------------------------------------------------------ inference


def real_inputs(store_dir: Path, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    """`batch` windows of 16 frames spread over the store's train split, on `device`, float32:
    example_face (B, 3, 128, 128) in [-1, 1], example_landmarks (B, 136) normalised, landmarks (B, 16, 136),
    example_pca (B, 6) PCA coefficients of the same example frame, mfcc (B, 16, 28, 12) AT-net's windows.
    Item i of both datasets is the same window with the same example frame (same clips, windows and seed)."""
    vg = VGNetDataset(store_dir, "train", T=T)
    at = ATNetDataset(store_dir, "train", T=T)
    picks = np.linspace(0, len(vg) - 1, batch).round().astype(int)  # repeats only when batch > windows
    v = default_collate([vg[int(i)] for i in picks])
    a = default_collate([at[int(i)] for i in picks])
    out = {"example_face": v["example_face"], "example_landmarks": v["example_landmarks"],
           "landmarks": v["landmarks"], "example_pca": a["example_landmarks"], "mfcc": a["mfcc"]}
    return {k: t.to(device) for k, t in out.items()}


class Cascade(torch.nn.Module):
    """AT-net -> boosted PCA reconstruction -> VG-net, all on one device; forward(inputs of `real_inputs`) ->
    frames float (B, 16, 3, S, S) in [-1, 1]."""

    def __init__(self, atnet: ATNet, vgnet: VGNet, pca_mean: np.ndarray, pca_components: np.ndarray):
        super().__init__()
        self.atnet, self.vgnet = atnet, vgnet
        self.register_buffer("mean", torch.as_tensor(pca_mean, dtype=torch.float32))  # (136,) normalised units
        self.register_buffer("components", torch.as_tensor(pca_components, dtype=torch.float32))  # (6, 136)
        self.register_buffer("boost", torch.as_tensor(BOOST, dtype=torch.float32))  # (6,) the paper's omega

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        coeffs = self.atnet(x["example_pca"], x["mfcc"])  # (B, 16, 6)
        landmarks = (coeffs.float() * self.boost) @ self.components + self.mean  # (B, 16, 136), as from_pca does
        frames, _ = self.vgnet(x["example_face"], landmarks, x["example_landmarks"])  # (B, 16, 3, S, S)
        return frames


def to_host_uint8(frames: torch.Tensor) -> np.ndarray:
    """frames (B, T, 3, H, W) in [-1, 1] -> uint8 (B*T, H, W, 3) in host memory (as `render_frames` converts)."""
    pixels = frames.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)  # on the device
    B, T_, _, H, W = pixels.shape
    return pixels.permute(0, 1, 3, 4, 2).reshape(B * T_, H, W, 3).cpu().numpy()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Seconds of each of `repeats` calls of `fn`, after `warmup` untimed calls; the device is synchronised around
    each call, so queued GPU work counts."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def inference_figures(store_dir: Path, run: DeviceRun) -> list[dict]:
    """Frames/s of VG-net alone and of the cascade at each batch size (module docstring, 1.)."""
    device = torch.device(run.device)
    torch.manual_seed(0)
    vgnet = VGNet(VGNetConfig.preset(run.preset)).to(device).eval()
    atnet = ATNet(ATNetConfig.preset(run.preset)).to(device).eval()
    pca = load_pca(store_dir / "pca.npz")
    cascade = Cascade(atnet, vgnet, pca.mean, pca.components).to(device).eval()
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    rows = []
    cudnn_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: let cuDNN pick its fastest kernels
    try:
        for batch in run.batches:
            x = real_inputs(store_dir, batch, device)
            calls = {
                "vgnet": lambda: vgnet(x["example_face"], x["landmarks"], x["example_landmarks"]),
                "cascade": lambda: to_host_uint8(cascade(x)),
            }
            for name, call in calls.items():
                def timed() -> object:
                    with torch.inference_mode(), autocast():
                        return call()

                times = time_calls(timed, device, run.repeats, run.warmup)
                median = statistics.median(times)
                rows.append({"model": name, "batch": batch, "frames_per_call": batch * T, "median_s": median,
                             "times_s": times, "fps": batch * T / median})
                print(f"  {run.device} {name:7s} batch {batch:3d}: {batch * T / median:10.1f} frames/s "
                      f"(median {median * 1000:.1f} ms of {len(times)})", flush=True)
            del x
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    return rows


# ------------------------------------------------------------------------------------------------------- training


def step_seconds(stamps: list[float], warmup: int) -> float:
    """Mean seconds per step from the times each step ended, leaving out the first `warmup` steps (>= 1: the first
    step has no start stamp)."""
    gaps = np.diff(stamps)[max(warmup, 1) - 1 :]  # gaps[i] = duration of step i + 2
    if len(gaps) == 0:
        raise ValueError(f"need more than {warmup} training steps to time any")
    return float(np.mean(gaps))


def loader_step_seconds(store_dir: Path, cfg: VGNetTrainConfig, device: str, warmup: int) -> float:
    """Seconds per step of `train_stage` itself, data from the store through its DataLoader (checkpoints to a
    temporary folder, discarded)."""
    stamps: list[float] = []
    with tempfile.TemporaryDirectory(prefix="talkface-bench-") as out:
        train_stage("atvgnet", VGNetStage(), cfg, store_dir, Path(out), Devices(accelerator=device),
                    on_step=lambda step, losses: stamps.append(time.perf_counter()))
    return step_seconds(stamps, warmup)


def memory_step_seconds(store_dir: Path, cfg: VGNetTrainConfig, device: str, warmup: int) -> float:
    """Seconds per step of the same training step (`VGNetStage.step` on the same Fabric, the loss values read as
    floats once a step as the loop does) on one batch (the sampler's first) already on the device, reused every
    step: what training would cost if loading were free."""
    stamps = fixed_batch_step_times(VGNetStage(), cfg, store_dir, Devices(accelerator=device))
    return step_seconds(stamps, warmup)


def training_figures(store_dir: Path, run: DeviceRun) -> dict:
    """VG-net training samples/s with the real DataLoader, and its step rate over the in-memory one's
    (module docstring, 2. and 3.)."""
    cfg = VGNetTrainConfig.preset(run.preset, steps=run.train_steps, batch_size=run.train_batch,
                                  num_workers=run.num_workers, cpu_threads=run.cpu_threads,
                                  cache_clips=run.cache_clips, checkpoint_every=0, sample_every=0)
    modes = {"dataloader": lambda: loader_step_seconds(store_dir, cfg, run.device, run.train_warmup),
             "in_memory": lambda: memory_step_seconds(store_dir, cfg, run.device, run.train_warmup)}
    rounds: dict[str, list[float]] = {name: [] for name in modes}
    for r in range(run.train_rounds):
        for name in (list(modes) if r % 2 == 0 else list(modes)[::-1]):  # alternate which mode goes first
            rounds[name].append(modes[name]())
            print(f"  {run.device} training round {r + 1}, {name:10s}: {rounds[name][-1] * 1000:8.1f} ms/step "
                  f"(batch {run.train_batch})", flush=True)
        if run.device == "cuda":
            torch.cuda.empty_cache()
    loader_s, memory_s = statistics.median(rounds["dataloader"]), statistics.median(rounds["in_memory"])
    return {"batch": run.train_batch, "steps_per_round": run.train_steps, "warmup_steps": run.train_warmup,
            "num_workers": run.num_workers, "cache_clips": run.cache_clips, "step_s": rounds,
            "dataloader_step_s": loader_s, "in_memory_step_s": memory_s, "samples_per_s": run.train_batch / loader_s,
            "in_memory_samples_per_s": run.train_batch / memory_s,
            "dataloader_ratio": memory_s / loader_s}  # (1 / loader_s) / (1 / memory_s)


# ----------------------------------------------------------------------------------------------------------- report


def param_counts(preset: str) -> dict[str, int]:
    cfg = VGNetTrainConfig.preset(preset)
    return {"vgnet": n_params(VGNet(cfg.generator)), "atnet": n_params(ATNet(ATNetConfig.preset(preset))),
            "discriminator": n_params(RegressionDiscriminator(cfg.discriminator))}


def mark(value: float, target: float) -> str:
    return "met" if value >= target else "NOT met"


def device_table(result: dict) -> str:
    """Markdown section of one device's figures; the issue's targets beside the GPU figures."""
    run, gpu = result["run"], result["run"]["device"] == "cuda"
    p = result["params"]
    lines = [f"### {run['device']}: {result['hardware']}",
             "",
             f"preset `{run['preset']}` (VG-net {p['vgnet'] / 1e6:.2f} M, AT-net {p['atnet'] / 1e6:.2f} M, "
             f"discriminator {p['discriminator'] / 1e6:.2f} M parameters), "
             f"{'bf16 autocast' if gpu else 'float32'}, torch threads {result['torch_threads']}",
             "",
             "| figure | batch | value | target (H100) |",
             "|---|---:|---:|---|"]
    top = max(run["batches"])
    for row in result["inference"]:
        what = "VG-net forward" if row["model"] == "vgnet" else "cascade AT-net → VG-net → uint8 on host"
        target = ""
        if gpu and row["batch"] == top and row["batch"] > 1:
            target = f"≥ {TARGET_FPS:,.0f} ({mark(row['fps'], TARGET_FPS)}); paper {PAPER_FPS} on a GTX 1080 Ti"
        lines.append(f"| inference, {what}, frames/s | {row['batch']} | {row['fps']:,.1f} | {target} |")
    tr = result.get("training")
    if tr:
        ratio_target = f"≥ {TARGET_RATIO} ({mark(tr['dataloader_ratio'], TARGET_RATIO)})" if gpu else ""
        lines += [
            f"| VG-net training, samples/s (store DataLoader, {tr['num_workers']} workers, cache {tr['cache_clips']} "
            f"clips) | {tr['batch']} | {tr['samples_per_s']:,.2f} | |",
            f"| VG-net training, samples/s (in-memory batch) | {tr['batch']} | "
            f"{tr['in_memory_samples_per_s']:,.2f} | |",
            f"| DataLoader ratio (steps/s DataLoader ÷ in-memory) | {tr['batch']} | {tr['dataloader_ratio']:.3f} | "
            f"{ratio_target} |",
        ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ main


def store_and_device_arguments(ap: argparse.ArgumentParser) -> None:
    """--store, --data-root and --device, shared with the other speed benchmarks."""
    ap.add_argument("--store", type=Path, help="a complete store, <data-root>/stores/grid/<version>")
    ap.add_argument("--data-root", type=Path, default=Path("data/bench"),
                    help="where the bundled clips are built when --store is absent (default data/bench)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: the CPU, and CUDA when available")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    store_and_device_arguments(ap)
    ap.add_argument("--preset", choices=("paper", "small"), help="model sizes (default: paper on cuda, small on cpu)")
    ap.add_argument("--batches", default="1,64", help="inference batch sizes, comma-separated (sequences of 16 frames)")
    ap.add_argument("--repeats", type=int, help="timed inference calls per figure (default 10 cuda, 5 cpu)")
    ap.add_argument("--train-batch", type=int, help="clips per training step (default 8 cuda, 2 cpu)")
    ap.add_argument("--train-steps", type=int, help="training steps per round and mode (default 30 cuda, 12 cpu)")
    ap.add_argument("--train-warmup", type=int, help="leading steps left out of each round (default 5 cuda, 2 cpu)")
    ap.add_argument("--train-rounds", type=int, help="interleaved (DataLoader, in-memory) rounds (default 3)")
    ap.add_argument("--num-workers", type=int, help="DataLoader workers (default 4 cuda, 0 cpu)")
    ap.add_argument("--cache-clips", type=int, default=16,
                    help="clips each data process caches (the VG-net config's default 16); 1 makes nearly every sample a "
                         "fresh read from the store, as on a store much larger than the cache")
    ap.add_argument("--cpu-threads", type=int, default=1 if (os.cpu_count() or 1) <= 2 else 0,
                    help="torch intra-op threads, 0 = torch's default (default: 1 on <= 2 cores, else 0)")
    ap.add_argument("--skip-train", action="store_true", help="inference figures only")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    return ap.parse_args(argv)


def device_runs(args: argparse.Namespace) -> list[DeviceRun]:
    """One DeviceRun per device to measure, the per-device defaults overridden by the options given."""
    has_cuda = torch.cuda.is_available()
    if args.device == "cuda" and not has_cuda:
        sys.exit("--device cuda: torch sees no CUDA device on this machine")
    devices = {"auto": ["cpu"] + (["cuda"] if has_cuda else []), "cpu": ["cpu"], "cuda": ["cuda"]}[args.device]
    batches = tuple(int(b) for b in args.batches.split(","))
    runs = []
    for device in devices:
        d = device_defaults(device)
        given = {k: getattr(args, k) for k in ("preset", "repeats", "train_batch", "train_steps", "train_warmup",
                                              "train_rounds", "num_workers") if getattr(args, k) is not None}
        d.update(given)
        runs.append(DeviceRun(device=device, batches=batches, cpu_threads=args.cpu_threads,
                              cache_clips=args.cache_clips, skip_train=args.skip_train, **d))
    return runs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs = device_runs(args)
    store_dir = resolve_store(args.store, args.data_root)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    print(f"store {store_dir}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    t0 = time.perf_counter()
    results = []
    for run in runs:
        result = {"run": {**run.__dict__, "batches": list(run.batches)}, "hardware": hardware_name(run.device),
                  "params": param_counts(run.preset), "torch_threads": torch.get_num_threads()}
        print(f"{run.device} ({result['hardware']}), preset {run.preset}:", flush=True)
        result["inference"] = inference_figures(store_dir, run)
        if not run.skip_train:
            result["training"] = training_figures(store_dir, run)
        results.append(result)
    wall = time.perf_counter() - t0
    print()
    print(f"## ATVGnet speed (store `{store_dir.name}`, {wall:.0f} s)\n")
    for result in results:
        print(device_table(result) + "\n")
    if not any(r["run"]["device"] == "cuda" for r in results):
        print("no GPU on this machine: GPU figures not measured" if not torch.cuda.is_available()
              else "GPU not asked for (--device cpu): GPU figures not measured")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"store": str(store_dir), "torch": torch.__version__, "wall_s": wall,
                                         "devices": results}, indent=2))


if __name__ == "__main__":
    main()
