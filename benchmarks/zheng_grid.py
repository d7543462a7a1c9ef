"""Zheng et al. 2020 on GRID sentences never trained on (issue 14, "Measured"): the word detector's accuracy and A2L's
landmark distance after a CPU run, beside ATVGnet's AT-net trained on the same clips.

    make benchmark-zheng-grid
    .venv/bin/python benchmarks/zheng_grid.py [--raw-root ../shared/data/samples/grid] [--data-root data/bench-s1]
        [--held-out 0.2] [--word-steps 600] [--mi-steps 400] [--a2l-steps 600] [--atnet-steps 600] [--ablation]

1. Builds the shared sample corpus (105 clips of speaker s1 with `.align` files, and the few other GRID clips) with
   the `build_dataset` flow, as `benchmarks/lipreader_wer.py` does (the same store).
2. Holds out the clips of the train split that `models.lipreader.data.held_out_clips` picks (a hash of the clip id:
   the lip reader's held-out sentences), and trains on the rest, small presets, CPU, one thread, seed 0: Zheng's
   word detector, MI estimator and A2L (+WD+TR; `--ablation` adds the other three rows of Tab. IV), and AT-net.
3. Scores on the held-out clips, each from its first frame's landmarks and its whole audio:
   - word accuracy on the held-out clips' word windows (25 frames centred on each `.align` word), beside chance
     (1/51) and the most frequent training word;
   - LMD (mouth points 48–67, mean-centred, mean over points, pixels of the 128-px crop; `tasks.metrics.lmd`) of
     A2L's landmarks and of AT-net's (without and with the demo's boost ω) against the store's dlib landmarks, beside
     the first frame repeated (a model that ignores the audio) and AT-net's PCA ceiling.
   The paper's numbers (Tab. I 96.73 % GRID word accuracy; Tab. IV A2L LMD 3.03 at 256 px on LRW) come from the
   full corpora; here a hundred sentences of one speaker train both models.

Prints a markdown table and writes it with the run's facts as JSON to `<data-root>/zheng_grid.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.atvgnet_speed import build_bundled_store  # noqa: E402
from models.atvgnet.inference import load_atnet  # noqa: E402
from models.atvgnet.stages import ATNetStage  # noqa: E402
from models.lipreader.data import held_out_clips  # noqa: E402
from models.zheng.generator import load_a2l, predict_landmarks  # noqa: E402
from models.zheng.stages import A2LStage, MIStage, WordStage, detector_accuracy  # noqa: E402
from storage.dataset import ClipReader, ok_clips  # noqa: E402
from tasks.landmark_eval import score_clip as atnet_scores  # noqa: E402
from tasks.metrics import lmd  # noqa: E402
from tasks.training import Devices, train_stage  # noqa: E402

SHARED_GRID = ROOT.parent / "shared" / "data" / "samples" / "grid"
TAB4 = {"baseline": (False, False), "+WD": (True, False), "+TR": (False, True), "+WD+TR": (True, True)}


def without(stage, held: frozenset[str]):
    """`stage` whose training windows leave out the clips in `held` (the benchmark's held-out sentences)."""

    class HeldOut(type(stage)):
        def dataset(self, store_dir, split, cfg, state=None):
            data = super().dataset(store_dir, split, cfg, state)
            keep = [i for i, w in enumerate(data.windows) if data.clips["clip_id"].iloc[w.clip] not in held]
            data.windows = [data.windows[i] for i in keep]
            if hasattr(data, "words"):
                data.words = data.words[keep]
            return data

    return HeldOut()


def train(stage, store_dir: Path, out_dir: Path, held: frozenset[str], steps: int, inputs: dict | None = None,
          label: str = "", **fields) -> tuple[Path, float]:
    """(last checkpoint, seconds) of `stage` trained `steps` steps at the small preset without the held-out clips."""
    cfg = stage.Config.preset("small", steps=steps, checkpoint_every=0, sample_every=0, cpu_threads=1, **fields)
    t0 = time.time()
    result = train_stage("zheng" if stage.name != "atnet" else "atvgnet", without(stage, held), cfg, store_dir,
                         out_dir, Devices(accelerator="cpu"), inputs=inputs)
    print(f"  {stage.name} {label}: {steps} steps in {time.time() - t0:.0f} s, last {result.losses[-1][1]}", flush=True)
    return result.last_checkpoint, time.time() - t0


def word_accuracy(checkpoint: Path, store_dir: Path, held: frozenset[str]) -> dict[str, float]:
    """Accuracy of the detector at `checkpoint` on the held-out clips' word windows, beside chance and the most
    frequent training word."""
    stage, ckpt = WordStage(), torch.load(checkpoint, weights_only=True)
    cfg = stage.Config.from_dict(ckpt["config"])
    detector = stage.modules(cfg)["detector"]
    detector.load_state_dict(ckpt["modules"]["detector"])
    data = stage.dataset(store_dir, "train", cfg)
    test = [i for i, w in enumerate(data.windows) if data.clips["clip_id"].iloc[w.clip] in held]
    held_windows = set(test)
    train_words = Counter(int(w) for i, w in enumerate(data.words) if i not in held_windows)
    majority = train_words.most_common(1)[0][0]
    return {"accuracy": detector_accuracy(detector, data, cfg, test),
            "majority_word": float(np.mean(data.words[test] == majority)),
            "chance": 1 / len(data.vocab), "windows": float(len(test))}


def landmark_distances(a2l_checkpoints: dict[str, Path], atnet_checkpoint: Path, store_dir: Path,
                       clips) -> dict[str, float]:
    """Frame-weighted mean LMD over `clips` (manifest rows) of each A2L row and of AT-net (module docstring, 3.)."""
    reader = ClipReader(store_dir)
    a2ls = {row: load_a2l(path) for row, path in a2l_checkpoints.items()}
    atnet, pca, _ = load_atnet(atnet_checkpoint)
    sums: Counter = Counter()
    frames = 0
    for row in clips.itertuples(index=False):
        true, audio = reader.landmarks(row), reader.audio(row)
        n = len(true)
        for label, (a2l, subset) in a2ls.items():
            sums[f"A2L {label}"] += n * lmd(predict_landmarks(a2l, true[0], audio, n, subset), true)
        at = atnet_scores(atnet, pca, true, reader.mfcc(row))
        for key, label in (("lmd_mouth", "AT-net"), ("lmd_mouth_boost", "AT-net, boost ω"),
                           ("lmd_mouth_static", "first frame repeated"),
                           ("lmd_mouth_pca_ceiling", "AT-net PCA ceiling")):
            sums[label] += n * at[key]
        frames += n
    return {label: total / frames for label, total in sums.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-root", type=Path, default=SHARED_GRID)
    ap.add_argument("--data-root", type=Path, default=Path("data/bench-s1"))
    ap.add_argument("--held-out", type=float, default=0.2)
    ap.add_argument("--word-steps", type=int, default=600)
    ap.add_argument("--mi-steps", type=int, default=400)
    ap.add_argument("--a2l-steps", type=int, default=600)
    ap.add_argument("--atnet-steps", type=int, default=600)
    ap.add_argument("--ablation", action="store_true", help="also the baseline, +WD and +TR rows of Tab. IV")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.raw_root.is_dir():
        sys.exit(f"{args.raw_root}: no GRID corpus there (the shared samples are ../shared/data/samples/grid)")
    store_dir = build_bundled_store(args.data_root.resolve(), args.raw_root.resolve(), args.workers)
    clips = ok_clips(store_dir, "train")
    held = held_out_clips(clips["clip_id"], args.held_out)
    out = args.data_root.resolve() / "zheng-grid"
    print(f"store {store_dir}: {len(clips)} train clips, {len(held)} held out", flush=True)
    word, word_s = train(WordStage(), store_dir, out / "word", held, args.word_steps)
    mi, mi_s = train(MIStage(), store_dir, out / "mi", held, args.mi_steps)
    rows = TAB4 if args.ablation else {"+WD+TR": TAB4["+WD+TR"]}
    a2l, seconds = {}, {"word": word_s, "mi": mi_s}
    for label, (wd, tr) in rows.items():
        stage = A2LStage()
        loss = stage.Config().loss.__class__(use_word_detector=wd, use_temporal_residual=tr)
        a2l[label], seconds[f"a2l {label}"] = train(stage, store_dir, out / f"a2l{label}", held, args.a2l_steps,
                                                    inputs={"word": word, "mi": mi}, label=label, loss=loss)
    atnet, seconds["atnet"] = train(ATNetStage(), store_dir, out / "atnet", held, args.atnet_steps)
    words = word_accuracy(word, store_dir, held)
    distances = landmark_distances(a2l, atnet, store_dir, clips[clips["clip_id"].isin(held)])
    lines = [f"Held-out s1 sentences: {len(held)} clips, {int(words['windows'])} word windows; trained on "
             f"{len(clips) - len(held)} clips (small presets, CPU).", "",
             "| word detector | accuracy |", "|---|---|",
             f"| Det_w ({args.word_steps} steps) | {100 * words['accuracy']:.1f} % |",
             f"| most frequent training word | {100 * words['majority_word']:.1f} % |",
             f"| chance (1/51) | {100 * words['chance']:.1f} % |",
             "| paper, Tab. I (GRID, full corpus) | 96.73 % |", "",
             "| landmarks from audio | LMD (mouth, px of 128) |", "|---|---|"]
    lines += [f"| {label} | {value:.3f} |" for label, value in distances.items()]
    table = "\n".join(lines)
    print(table)
    report = {"store": str(store_dir), "held_out": sorted(held), "steps": {"word": args.word_steps, "mi": args.mi_steps,
              "a2l": args.a2l_steps, "atnet": args.atnet_steps}, "seconds": seconds, "word": words,
              "lmd": distances, "markdown": table, "cpus": os.cpu_count()}
    (args.data_root / "zheng_grid.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
