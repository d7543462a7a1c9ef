"""DDP on CPU: training samples/s of one stage in 1 process and in 2 (gloo, started as the train task starts them,
`tasks.launch.run_ranks`), the same global batch, and whether the losses agree step for step.

    make benchmark-ddp                                     # AT-net "small", batch 16, 60 steps, bundled GRID store
    .venv/bin/python benchmarks/ddp_cpu.py --stage vgnet --batch 4 --steps 20

samples/s = global batch / mean step time over the steps after the first (start-up left out). On a machine with
fewer free cores than processes, 2 processes cannot be faster: the figure then shows DDP's overhead, not its gain.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.registry import get_stage  # noqa: E402
from tasks.launch import RankJob, run_ranks  # noqa: E402
from tasks.training import Devices, train_stage  # noqa: E402


def bundled_store(data_root: Path) -> Path:
    from flows.build_dataset import BuildParams, build_dataset
    from flows.embedded import start_temporary_prefect

    start_temporary_prefect()
    return Path(build_dataset(BuildParams(raw_root=ROOT / "samples" / "grid", data_root=data_root, shard_size=4)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", default="atvgnet")
    ap.add_argument("--stage", default="atnet")
    ap.add_argument("--batch", type=int, default=16, help="global batch")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--store", type=Path, help="a complete store (default: build the bundled GRID clips)")
    ap.add_argument("--data-root", type=Path, default=ROOT / "data" / "bench")
    args = ap.parse_args(argv)
    store_dir = args.store or bundled_store(args.data_root)
    stage = get_stage(args.system, args.stage)
    cfg = stage.Config.preset("small", steps=args.steps, batch_size=args.batch, checkpoint_every=0, sample_every=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="talkface-ddp-") as tmp:
        one = train_stage(args.system, stage, cfg, store_dir, Path(tmp) / "one", Devices(accelerator="cpu"))
        one_losses = [v for _, v in one.losses]
        job = RankJob(system=args.system, stage=args.stage, config=cfg.to_dict(), store_dir=str(store_dir),
                      out_dir=str(Path(tmp) / "two"), devices=vars(Devices(accelerator="cpu", devices=2)),
                      result=str(Path(tmp) / "two" / "result.json"))
        two = run_ranks(job, Path(tmp) / "two")
    for n, step_s in ((1, one.step_seconds), (2, two["step_seconds"])):
        rows.append((n, args.batch / step_s, step_s))
    key = next(iter(one_losses[0]))
    a, b = np.array([v[key] for v in one_losses]), np.array([v[key] for _, v in two["losses"]])
    print(f"\n{args.system}/{args.stage} (small), global batch {args.batch}, {args.steps} steps, "
          f"{os.cpu_count()} CPUs\n")
    print("| processes | samples/s | s/step |\n|---|---|---|")
    for n, sps, step_s in rows:
        print(f"| {n} | {sps:.1f} | {step_s:.3f} |")
    rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-12)
    print(f"\nrelative difference of `{key}`, 1 vs 2 processes: steps 1-10 at most {rel[:10].max():.1e}, "
          f"steps 1-{len(rel)} at most {rel.max():.1e} (float reduction order differs; Adam amplifies it over "
          "the steps)")


if __name__ == "__main__":
    main()
