"""The lip reader's WER on GRID sentences it never trained on (issue 13; LipNet's "overlapped speakers" protocol).

    .venv/bin/python benchmarks/lipreader_wer.py [--raw-root ../shared/data/samples/grid] [--data-root data/bench-s1]
        [--held-out 0.2] [--steps 3000] [--preset small] [--mirror] [--workers 2]

1. Builds the shared sample corpus (105 clips of speaker s1 with their `.align` files, and the few other GRID
   clips) with the `build_dataset` flow; speaker s1 falls in the train split.
2. Trains the "lipreader" stage (`models.lipreader`) on the train split's clips minus a held-out fifth chosen by
   `models.lipreader.data.held_out_clips` (a hash of the clip id: the same clips everywhere), CPU, one thread.
3. Reads every clip of the train split with the trained reader (`LipReader.read_batch` on the store's aligned faces,
   as `talkface evaluate` reads real and generated videos) and prints corpus WER (jiwer) and CER, greedy and
   grammar-snapped, for the training clips and the held-out ones, beside a constant guess (each of the six GRID slots'
   most frequent training word) and the paper's 21.76 % (Vougioukas et al. 2019 Tab. 5: their LipNet on the
   ground-truth videos of GRID's unseen test speakers, trained on the full corpus: about 33 000 sentences of 28
   speakers, here about 85 sentences of one).

Prints a markdown table and writes it, with the run's facts, as JSON to `<data-root>/lipreader_wer.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.atvgnet_speed import build_bundled_store  # noqa: E402
from models.lipreader.data import held_out_clips  # noqa: E402
from models.lipreader.reader import LipReader  # noqa: E402
from models.lipreader.stages import LipReaderStage  # noqa: E402
from models.lipreader.text import normalize  # noqa: E402
from storage.dataset import ClipReader, ok_clips  # noqa: E402
from tasks.metrics.wer import cer, wer  # noqa: E402
from tasks.training import Devices, train_stage  # noqa: E402

SHARED_GRID = ROOT.parent / "shared" / "data" / "samples" / "grid"
PAPER_WER = 0.2176  # Vougioukas et al. 2019 Tab. 5, ground truth (their LipNet, unseen speakers)


def constant_guess(texts: list[str]) -> str:
    """The sentence of each GRID slot's most frequent word over `texts` (six words each): the best fixed answer."""
    slots = [t.split() for t in texts if len(t.split()) == 6]
    return " ".join(Counter(words[i] for words in slots).most_common(1)[0][0] for i in range(6))


def scores(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    return {"wer": wer(references, hypotheses), "cer": cer(references, hypotheses)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw-root", type=Path, default=SHARED_GRID)
    ap.add_argument("--data-root", type=Path, default=ROOT / "data" / "bench-s1")
    ap.add_argument("--held-out", type=float, default=0.2)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--preset", default="small", choices=("small", "paper"))
    ap.add_argument("--workers", type=int, default=2, help="shard builders of the store build")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mirror", action="store_true", help="also train on every clip flipped (LipNet's augmentation)")
    args = ap.parse_args()
    if not args.raw_root.is_dir():
        sys.exit(f"{args.raw_root}: no GRID corpus there (the shared samples are ../shared/data/samples/grid)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    t0 = time.perf_counter()
    store_dir = build_bundled_store(args.data_root.resolve(), args.raw_root.resolve(), args.workers)
    build_s = time.perf_counter() - t0
    clips = ok_clips(store_dir, "train")
    held = held_out_clips(clips["clip_id"], args.held_out)
    kept = clips[~clips["clip_id"].isin(held)]
    print(f"store {store_dir}: {len(clips)} ok train clips ({', '.join(sorted(clips['speaker'].unique()))}); "
          f"{len(kept)} trained on, {len(held)} held out", flush=True)

    stage = LipReaderStage()
    cfg = stage.Config.preset(args.preset, steps=args.steps, held_out=args.held_out, seed=args.seed,
                              mirror=args.mirror, checkpoint_every=0, sample_every=0)
    out_dir = args.data_root.resolve() / (f"lipreader-{args.preset}-{args.steps}-heldout{args.held_out}-seed{args.seed}"
                                          + ("-mirror" if args.mirror else ""))
    result = train_stage("lipreader", stage, cfg, store_dir, out_dir, Devices(accelerator="cpu"))

    reader = LipReader.load(result.last_checkpoint)
    faces = ClipReader(store_dir)
    t1 = time.perf_counter()
    transcripts = reader.read_batch([faces.faces(row) for row in clips.itertuples()])
    read_s = time.perf_counter() - t1
    refs = [normalize(t) for t in clips["text"]]
    guess = constant_guess([r for r, c in zip(refs, clips["clip_id"]) if c not in held])
    rows = []
    for part, mask in (("trained on", ~clips["clip_id"].isin(held)), ("held out", clips["clip_id"].isin(held))):
        idx = [i for i, m in enumerate(mask) if m]
        ref = [refs[i] for i in idx]
        rows.append({"clips": part, "n": len(idx),
                     "greedy": scores(ref, [transcripts[i].greedy for i in idx]),
                     "greedy+grammar": scores(ref, [transcripts[i].snapped for i in idx]),
                     "constant guess": scores(ref, [guess] * len(idx))})
    facts = {"store": str(store_dir), "preset": args.preset, "steps": args.steps, "batch_size": cfg.batch_size,
             "lr": cfg.lr, "mirror": cfg.mirror, "seed": args.seed, "held_out_fraction": args.held_out,
             "train_clips": len(kept),
             "train_frames": int(kept["n_frames"].sum()), "held_out_clips": sorted(held),
             "constant_guess": guess, "build_s": round(build_s, 1), "train_s": round(result.seconds, 1),
             "read_s": round(read_s, 1), "final_loss": result.losses[-1][1]["loss"], "rows": rows,
             "paper_wer_ground_truth": PAPER_WER}
    (args.data_root / "lipreader_wer.json").write_text(json.dumps(facts, indent=2))

    mirrored = ", mirrored clips" if cfg.mirror else ""
    print(f"\nLip reader ({args.preset} preset{mirrored}, {args.steps} steps of batch {cfg.batch_size} on {len(kept)} "
          f"clips / {facts['train_frames']} frames of {', '.join(sorted(kept['speaker'].unique()))}, {result.seconds:.0f} s on "
          f"CPU); corpus WER / CER:\n")
    print("| clips | n | greedy WER | greedy CER | greedy+grammar WER | constant guess WER |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clips']} | {r['n']} | {r['greedy']['wer']:.3f} | {r['greedy']['cer']:.3f} | "
              f"{r['greedy+grammar']['wer']:.3f} | {r['constant guess']['wer']:.3f} |")
    print(f"| paper (Vougioukas et al. Tab. 5, ground truth, unseen speakers, full corpus) | | {PAPER_WER:.4f} | | | |")
    print(f"\nconstant guess: {guess!r}; held out: {', '.join(sorted(held))}")


if __name__ == "__main__":
    main()
