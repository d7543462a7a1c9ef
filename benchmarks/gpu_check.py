"""The GPU check: for every registered stage, training samples/s, the DataLoader's share of a step and peak GPU
memory; for every system that renders, inference frames/s at batch 1 and 64. Run by `benchmarks/gpu_check.sh` on a
lent H100/H200, where it has one chance (about 15 minutes of machine time in all, start-up included), so:

- every figure is written as soon as it is measured, one JSON line per stage and generator, to
  `OUT_DIR/gpu_check.jsonl` (the folder that comes back), and the table to `OUT_DIR/gpu_check.md` at the end;
- a stage or generator that fails is recorded with its error and the rest run; one that needs a failed stage's
  networks is recorded as skipped, naming it;
- `--deadline` (seconds from start): no stage or generator is started that would not end before it at the pace
  measured so far; a watchdog writes the table and exits at `--hard-limit`, whatever hangs;
- the environment (python, torch, CUDA, GPU, /dev/shm) is the first line, and a progress line with the time left
  follows every row.

Per stage (the "paper" preset unless --preset, in the order of `system.stages`; a stage that uses earlier stages'
networks, `Stage.uses`, gets the final checkpoints of those stages' runs here: speed does not depend on weights):
- batch: the preset's global batch; a store split smaller than it is repeated up to it (`AtLeastBatch`), and the
  row gives the distinct samples;
- `tasks.training.train_stage` itself (the store-backed DataLoader with --num-workers spawned workers, bf16-mixed
  on a GPU, the frozen networks of `Stage.uses` under the same autocast, TF32 on, no validation) for --steps steps;
- samples/s = batch / mean step time over the steps after --warmup; DataLoader share = the mean time a step waited
  for its batch (`TrainResult.data_waits`, the same steps) / the mean step time: 0 when loading hides behind compute;
- peak GiB = `torch.cuda.max_memory_allocated()` over the stage's run.
Per rendering system, from a model directory exported from its stages' checkpoints here: one test clip's still (the
generator's own crop, `generator.crop.field`; the face crop's landmarks with it) and its audio repeated to n = T·B
frames (T = the generator's `T`, else 16; B = --batches), all n in one forward (`BATCHES_FRAMES`), under bf16 autocast
(TF32 on); one warm-up call, then --calls timed calls: frames/s from the median call, and the generator's CPU audio
features (`audio_features`, where it has one) timed apart on the same audio. A bf16 call that fails is retried in
float32, and the row says so.

    python benchmarks/gpu_check.py --store STORE [--systems atvgnet,lipgan] [--deadline 300] [--out-dir DIR]
    python benchmarks/gpu_check.py --plan --store STORE          # datasets and batches only (the preflight)
    python benchmarks/gpu_check.py --table DIR/gpu_check.jsonl   # the table of a run that died
    python benchmarks/gpu_check.py --flops --store STORE --preset paper --device cpu   # the estimate's inputs
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.atvgnet_speed import time_calls  # noqa: E402
from models.registry import SYSTEMS  # noqa: E402
from models.system import Stage, System  # noqa: E402
from storage.dataset import ClipReader, ok_clips  # noqa: E402
from tasks.model_dir import export_model  # noqa: E402
from tasks.training import Devices, train_stage  # noqa: E402

FIRST_STAGE_GUESS_S = 30.0  # the time budgeted for a first stage or generator, before any has been measured
SAMPLES_PER_FRAME = 640  # 16 kHz audio at 25 fps
# The unit of each generator's `batch`: T-frame chunks (ATVGnet's VG-net, the lip GAN's windows) or single frames
# (Vougioukas et al.'s frame decoder, Zheng's U-Net). The check renders T·B frames, T·B of them per forward, for all.
BATCHES_FRAMES = frozenset({"sda", "zheng"})


# --- where the rows go -----------------------------------------------------------------------------------------------

class Rows:
    """The check's rows, each appended to `out_dir/gpu_check.jsonl` (flushed and synced) and printed as it comes."""

    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / "gpu_check.jsonl"
        self.path.write_text("")
        self.rows: list[dict] = []
        self.running = "start-up"  # what is being measured, for the watchdog's last row

    def add(self, row: dict) -> dict:
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        print(json.dumps(row), flush=True)
        return row


class Clock:
    """Seconds since the check started, and whether a piece of work expected to take `seconds` ends before the
    deadline."""

    def __init__(self, deadline_s: float):
        self.start, self.deadline_s = time.monotonic(), deadline_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def too_late(self, seconds: float) -> str | None:
        """Why work expected to take `seconds` must not start (it would end past the deadline); None when it fits."""
        if self.elapsed() + seconds <= self.deadline_s:
            return None
        return f"deadline: {seconds:.0f} s expected, {self.deadline_s - self.elapsed():.0f} s left"


def environment(device: str) -> dict:
    """What ran the check: python, torch, CUDA and cuDNN, the GPU and its memory, CPUs, /dev/shm (DataLoader workers
    pass batches through it)."""
    shm = shutil.disk_usage("/dev/shm") if os.path.isdir("/dev/shm") else None
    env = {"kind": "environment", "python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "device": device, "cpus": os.cpu_count(), "dev_shm_gib": round(shm.total / 2**30, 1) if shm else None}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   multiprocessors=props.multi_processor_count)
    return env


# --- datasets that hold a paper batch --------------------------------------------------------------------------------

class Repeated(Dataset):
    """`dataset` repeated `times` times (index i reads sample i mod len(dataset))."""

    def __init__(self, dataset: Dataset, times: int):
        self.dataset, self.times = dataset, times

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, i: int):
        return self.dataset[i % len(self.dataset)]


class AtLeastBatch:
    """`stage`, with its training split repeated up to `batch` samples when it holds fewer (the carried store has a
    few clips; a paper batch of whole utterances needs more): the step's cost is that of the paper batch. Everything
    else is the stage's own."""

    def __init__(self, stage: Stage, batch: int):
        self.stage, self.batch = stage, batch
        self.distinct: int | None = None  # the split's own samples, once `dataset` has been built

    def __getattr__(self, name: str):
        return getattr(self.stage, name)

    def dataset(self, store_dir: Path, split: str, cfg, state: dict | None = None) -> Dataset:
        dataset = self.stage.dataset(store_dir, split, cfg, state)
        self.distinct = len(dataset)
        if self.distinct == 0:
            raise ValueError(f"{self.stage.name}: the store's {split} split has no samples")
        return dataset if len(dataset) >= self.batch else Repeated(dataset, math.ceil(self.batch / len(dataset)))

    def extra_state(self, dataset: Dataset) -> dict:
        return self.stage.extra_state(dataset.dataset if isinstance(dataset, Repeated) else dataset)


def stage_config(stage: Stage, args: argparse.Namespace):
    """The stage's config at the check's preset, with the check's steps, workers and batch (when given)."""
    fields = {"steps": args.steps, "checkpoint_every": 0, "sample_every": 0, "num_workers": args.num_workers,
              **({"batch_size": args.batch} if args.batch else {})}
    return stage.Config.preset(args.preset, **fields)


def plan_stage(system: System, stage: Stage, args: argparse.Namespace) -> dict:
    """The stage's batch and distinct training samples on the store, its dataset built as the run builds it."""
    cfg = stage.for_store(stage_config(stage, args), args.store)
    batched = AtLeastBatch(stage, cfg.batch_size)
    n = len(batched.dataset(args.store, "train", cfg))
    if n < cfg.batch_size:
        raise ValueError(f"{n} samples for a batch of {cfg.batch_size}")
    return {"batch": cfg.batch_size, "distinct": batched.distinct}


# --- training ---------------------------------------------------------------------------------------------------------

def time_stage(system: System, stage: Stage, args: argparse.Namespace, out_dir: Path,
               inputs: dict[str, Path]) -> tuple[dict, Path]:
    """The stage's row (module docstring) and its run's final checkpoint. inputs: {stage: checkpoint} of the earlier
    stages it uses."""
    cfg = stage_config(stage, args)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.monotonic()
    batched = AtLeastBatch(stage, cfg.batch_size)
    result = train_stage(system.name, batched, cfg, args.store, out_dir, Devices(accelerator=args.device),
                         inputs=inputs, validate=False)
    steps = slice(args.warmup, None)
    step_s = float(np.mean(result.step_times[steps]))
    wait_s = float(np.mean(result.data_waits[steps]))
    row = {"kind": "stage", "system": system.name, "stage": stage.name, "status": "ok",
           "precision": "bf16-mixed, TF32" if args.device == "cuda" else "32-true", "batch": result.batch_size,
           "distinct": batched.distinct, "steps_timed": len(result.step_times[steps]),
           "samples_per_s": result.batch_size / step_s, "step_s": step_s, "data_wait_s": wait_s,
           "dataloader_share": wait_s / step_s,
           "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None,
           "seconds": time.monotonic() - t0, "device": result.device}
    return row, result.last_checkpoint


# --- inference --------------------------------------------------------------------------------------------------------

def precision_context(precision: str, device: str):
    """bf16 autocast on `device` for "bf16"; nothing for "fp32"."""
    return torch.autocast(device_type=device, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def still_and_audio(generator, store: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """A test clip's first frame in the generator's crop, the face crop's landmarks (None for another crop) and
    the clip's audio int16 (S,) at 16 kHz."""
    row = ok_clips(store, "test").iloc[0]
    reader = ClipReader(store)
    crop = generator.crop.field  # "face" (ATVGnet, Zheng), "mouth" (the lip GAN), "face_sda" (Vougioukas et al.)
    points = reader.landmarks(row)[0] if crop == "face" else None
    return reader.crops(row, crop)[0], points, reader.audio(row)


def time_generator(system: System, generator, inputs: tuple, args: argparse.Namespace, batch: int,
                   precision: str) -> dict:
    """The generator's row at one batch and precision (module docstring). inputs: `still_and_audio`."""
    still, points, audio = inputs
    T = getattr(generator, "T", 16)  # frames of one batch item
    n = T * batch
    generator.batch = n if system.name in BATCHES_FRAMES else batch  # n frames per forward either way
    wave = np.resize(audio, n * SAMPLES_PER_FRAME)  # the clip's audio repeated to n frames
    device = torch.device(args.device)
    with precision_context(precision, args.device):
        frames = generator(still, points, wave, n)  # warm-up: cuDNN autotuning, allocations
        call_s = float(np.median(time_calls(lambda: generator(still, points, wave, n), device, args.calls, 0)))
    features = getattr(generator, "audio_features", None)
    features_s = float(np.median(time_calls(lambda: features(wave), device, args.calls, 0))) if features else None
    return {"kind": "inference", "system": system.name, "status": "ok", "batch": batch, "frames": n,
            "frame_shape": list(frames.shape[1:]), "precision": f"{precision} autocast, TF32"
            if args.device == "cuda" else f"{precision} autocast (cpu)", "calls": args.calls, "call_s": call_s,
            "frames_per_s": n / call_s, "features_s": features_s,
            "frames_per_s_without_features": n / (call_s - features_s) if features_s is not None
            and call_s > features_s else None}


# --- the run ----------------------------------------------------------------------------------------------------------

def selected_systems(names: str | None) -> list[System]:
    if not names:
        return list(SYSTEMS.values())
    unknown = sorted(set(names.split(",")) - set(SYSTEMS))
    if unknown:
        raise SystemExit(f"unknown systems {', '.join(unknown)}; registered: {', '.join(SYSTEMS)}")
    return [SYSTEMS[n] for n in names.split(",")]


def error_row(row: dict, error: BaseException) -> dict:
    """`row` marked failed, with the error and the last lines of its traceback."""
    tail = traceback.format_exception(error)[-3:]
    return {**row, "status": "error", "error": f"{type(error).__name__}: {error}"[:800],
            "traceback": "".join(tail)[-1500:]}


def progress(clock: Clock, durations: list[float], left: int) -> None:
    pace = float(np.mean(durations)) if durations else FIRST_STAGE_GUESS_S
    print(f"[{clock.elapsed():6.1f} s] {left} stages and generators left, ~{left * pace:.0f} s at this pace; "
          f"deadline at {clock.deadline_s:.0f} s", flush=True)


def run_system(system: System, args: argparse.Namespace, rows: Rows, clock: Clock, durations: list[float],
               left: list[int]) -> None:
    """Every stage of `system` in order, then its generator at each batch; each a row (module docstring)."""
    with tempfile.TemporaryDirectory(prefix=f"talkface-gpu-{system.name}-") as tmp:
        checkpoints: dict[str, Path] = {}  # the final checkpoint of each stage that ran: later stages' inputs
        for stage in system.stages:
            row = {"kind": "stage", "system": system.name, "stage": stage.name}
            used = [s.name for s, _ in stage.uses(stage_config(stage, args)).values()]
            missing = [name for name in used if name not in checkpoints]
            late = clock.too_late(max(durations, default=FIRST_STAGE_GUESS_S))
            if missing:
                rows.add({**row, "status": "skipped", "why": f"needs the networks of {', '.join(missing)}, "
                                                              "which did not train"})
            elif late:
                rows.add({**row, "status": "skipped", "why": late})
            else:
                t0, rows.running = time.monotonic(), f"{system.name}/{stage.name}"
                try:
                    stage_row, checkpoints[stage.name] = time_stage(system, stage, args, Path(tmp) / "ckpt",
                                                                    {name: checkpoints[name] for name in used})
                    rows.add(stage_row)
                except Exception as error:  # recorded; the other stages still run
                    rows.add(error_row(row, error))
                finally:
                    free_gpu_memory(args.device)
                durations.append(time.monotonic() - t0)
            left[0] -= 1
            progress(clock, durations, left[0])
        if system.generator is not None:
            run_generator(system, args, rows, clock, durations, checkpoints, Path(tmp))
            left[0] -= 1
            progress(clock, durations, left[0])


def run_generator(system: System, args: argparse.Namespace, rows: Rows, clock: Clock, durations: list[float],
                  checkpoints: dict[str, Path], tmp: Path) -> None:
    row = {"kind": "inference", "system": system.name}
    missing = [s.name for s in system.stages if s.inference_modules and s.name not in checkpoints]
    late = clock.too_late(max(durations, default=FIRST_STAGE_GUESS_S))
    if missing:
        rows.add({**row, "status": "skipped", "why": f"stages {', '.join(missing)} did not train"})
        return
    if late:
        rows.add({**row, "status": "skipped", "why": late})
        return
    t0, rows.running = time.monotonic(), f"{system.name} inference"
    try:
        generator = system.generator.load(export_model(system, checkpoints, tmp / "model"), args.device)
        inputs = still_and_audio(generator, args.store)
    except Exception as error:
        rows.add(error_row(row, error))
        return
    for batch in args.batches:
        for precision in ("bf16", "fp32"):
            try:
                rows.add(time_generator(system, generator, inputs, args, batch, precision))
                break
            except Exception as error:  # a bf16 failure is recorded, then the same call in float32
                rows.add(error_row({**row, "batch": batch, "precision": precision}, error))
            finally:
                free_gpu_memory(args.device)
    durations.append(time.monotonic() - t0)


def free_gpu_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()


def start_watchdog(seconds: float, rows: Rows, out_dir: Path) -> threading.Timer:
    """After `seconds`, whatever the main thread is doing: the stacks on stderr, the table of the rows so far, and
    exit 124 (a hung DataLoader or kernel must not take the rest of the machine time). `stop_watchdog(timer)` when
    the check ends in time."""
    faulthandler.dump_traceback_later(max(seconds - 1, 1), exit=False)

    def expire() -> None:
        rows.add({"kind": "note", "status": "error", "error": f"hard limit: stopped after {seconds:.0f} s, in "
                                                              f"{rows.running}"})
        write_table(rows.rows, out_dir)
        os._exit(124)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def stop_watchdog(timer: threading.Timer) -> None:
    timer.cancel()
    faulthandler.cancel_dump_traceback_later()


# --- the table --------------------------------------------------------------------------------------------------------

def _f(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(rows: list[dict]) -> str:
    """The rows as Markdown: the environment, a training table and an inference table; failed and skipped rows say
    why."""
    env = next((r for r in rows if r["kind"] == "environment"), {})
    device = f"{env['gpu']} ({env.get('gpu_memory_gib')} GiB)" if env.get("gpu") else env.get("device", "?")
    lines = [f"GPU check on {device}, python {env.get('python')}, torch {env.get('torch')}, CUDA {env.get('cuda')}, "
             f"{env.get('cpus')} CPUs, /dev/shm {env.get('dev_shm_gib')} GiB", "",
             "| stage | status | precision | batch | samples/s | s/step | DataLoader share | peak GiB | stage s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in (r for r in rows if r["kind"] == "stage"):
        if r["status"] == "ok":
            batch = f"{r['batch']} ({r['distinct']} distinct)" if r["distinct"] < r["batch"] else r["batch"]
            lines.append(f"| {r['system']}/{r['stage']} | ok | {r['precision']} | {batch} | "
                         f"{r['samples_per_s']:.1f} | {r['step_s']:.4f} | {r['dataloader_share']:.2f} | "
                         f"{_f(r['peak_gib'], '.2f')} | {r['seconds']:.1f} |")
        else:
            lines.append(f"| {r['system']}/{r['stage']} | {r['status']}: {r.get('error') or r.get('why')} "
                         "| | | | | | | |")
    lines += ["", "| system | status | precision | batch (16-frame items) | frames per forward | frames/s | "
              "audio features s | frames/s without features |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in (r for r in rows if r["kind"] == "inference"):
        if r["status"] == "ok":
            lines.append(f"| {r['system']} | ok | {r['precision']} | {r['batch']} | {r['frames']} | "
                         f"{r['frames_per_s']:.0f} | {_f(r['features_s'], '.3f')} | "
                         f"{_f(r['frames_per_s_without_features'], '.0f')} |")
        else:
            lines.append(f"| {r['system']} | {r['status']}: {r.get('error') or r.get('why')} | "
                         f"{r.get('precision', '')} | {r.get('batch', '')} | | | | |")
    lines += [f"\n{r['error']}" for r in rows if r["kind"] == "note"]
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict], out_dir: Path) -> str:
    text = table(rows)
    (out_dir / "gpu_check.md").write_text(text)
    print(text, flush=True)
    return text


# --- main -------------------------------------------------------------------------------------------------------------

def arguments(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, help="a complete store (the carried one: benchmarks/gpu_carry/store)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--preset", default=None, help="paper (default on cuda) or small (default on cpu)")
    ap.add_argument("--systems", default=None, help="comma-separated registered systems (default: all)")
    ap.add_argument("--steps", type=int, default=30, help="training steps of each stage")
    ap.add_argument("--warmup", type=int, default=5, help="first steps not timed")
    ap.add_argument("--batch", type=int, default=None, help="global batch of every stage (default: the preset's)")
    ap.add_argument("--num-workers", type=int, default=4, help="DataLoader workers (spawned) of each stage")
    ap.add_argument("--batches", default="1,64", help="inference batches (T-frame chunks per forward)")
    ap.add_argument("--calls", type=int, default=3, help="timed inference calls after the warm-up call")
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds after which nothing new starts")
    ap.add_argument("--hard-limit", type=float, default=None, help="seconds after which the check stops whatever "
                                                                   "it does (default: deadline + 60)")
    ap.add_argument("--out-dir", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results"))
    ap.add_argument("--plan", action="store_true", help="only build every stage's dataset and check its batch")
    ap.add_argument("--flops", action="store_true", help="count each stage's operations per sample on the CPU")
    ap.add_argument("--table", type=Path, default=None, help="print the table of an existing gpu_check.jsonl")
    args = ap.parse_args(argv)
    args.preset = args.preset or ("paper" if args.device == "cuda" else "small")
    args.batches = [int(b) for b in args.batches.split(",")]
    args.hard_limit = args.hard_limit or args.deadline + 60
    if args.table is None and args.store is None:
        ap.error("--store is required")
    if args.warmup >= args.steps:
        ap.error("--warmup must be smaller than --steps")
    return args


def plan(args: argparse.Namespace) -> int:
    """--plan: each stage's batch and distinct samples; returns the number of stages that failed."""
    failed = 0
    for system in selected_systems(args.systems):
        for stage in system.stages:
            row = {"kind": "plan", "system": system.name, "stage": stage.name, "preset": args.preset}
            try:
                row.update(status="ok", **plan_stage(system, stage, args))
            except Exception as error:
                row, failed = error_row(row, error), failed + 1
            print(json.dumps(row), flush=True)
    return failed


def count_flops(args: argparse.Namespace) -> None:
    """--flops (on the CPU, minutes): each stage's floating-point operations per training sample, counted by
    `torch.utils.flop_counter.FlopCounterMode` over one `train_stage` step at batch 2 (forward and backward of every
    network, frozen ones included), the operations of a step at the preset's batch, and the size of the run's final
    checkpoint: the inputs of the GPU time estimate (README, "GPU check")."""
    from torch.utils.flop_counter import FlopCounterMode

    for system in selected_systems(args.systems):
        with tempfile.TemporaryDirectory(prefix=f"talkface-flops-{system.name}-") as tmp:
            checkpoints: dict[str, Path] = {}
            for stage in system.stages:
                batch = stage_config(stage, args).batch_size
                one_step = {**vars(args), "steps": 1, "batch": 2, "num_workers": 0}
                cfg = stage_config(stage, argparse.Namespace(**one_step))
                used = {s.name: checkpoints[s.name] for s, _ in stage.uses(cfg).values()}
                with FlopCounterMode(display=False) as counter:
                    result = train_stage(system.name, AtLeastBatch(stage, 2), cfg, args.store, Path(tmp), Devices(
                        accelerator="cpu"), inputs=used, validate=False)
                checkpoints[stage.name] = result.last_checkpoint
                per_sample = counter.get_total_flops() / 2
                print(json.dumps({"kind": "flops", "system": system.name, "stage": stage.name, "batch": batch,
                                  "gflop_per_sample": round(per_sample / 1e9, 2),
                                  "tflop_per_step": round(per_sample * batch / 1e12, 3),
                                  "checkpoint_mib": round(result.last_checkpoint.stat().st_size / 2**20)}),
                      flush=True)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.table is not None:
        print(table([json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]))
        return 0
    if args.plan:
        return 1 if plan(args) else 0
    if args.flops:
        count_flops(args)
        return 0
    systems = selected_systems(args.systems)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest kernels once
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    rows, clock = Rows(args.out_dir), Clock(args.deadline)
    watchdog = start_watchdog(args.hard_limit, rows, args.out_dir)
    try:
        rows.add(environment(args.device))
        durations: list[float] = []
        left = [sum(len(s.stages) + (s.generator is not None) for s in systems)]
        for system in systems:
            run_system(system, args, rows, clock, durations, left)
    finally:
        stop_watchdog(watchdog)
    write_table(rows.rows, args.out_dir)
    bad = [r for r in rows.rows if r.get("status") not in (None, "ok")]
    print(f"{len(rows.rows) - 1} rows in {clock.elapsed():.0f} s; {len(bad)} failed or skipped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
