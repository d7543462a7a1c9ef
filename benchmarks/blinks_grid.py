"""Blinks of real GRID videos by both detectors of `tasks.metrics.blinks`, beside Vougioukas et al. 2019 Tab. 4.

    .venv/bin/python benchmarks/blinks_grid.py [--raw-root ../shared/data/samples/grid] [--speaker s1]
        [--max-clips N] [--landmarks source|face|both]

Per clip: decode at 25 fps (`tasks.media`), track dlib's 68 landmarks (`tasks.face.FaceTracker`), fill the frames
without a face by interpolation, eye aspect ratio of both eyes; then, pooled over the clips, blinks per second and
the median blink duration by
- "threshold": the project's rule (`threshold_blinks`, the default of `blink_statistics` and of evaluation);
- "peaks": the authors' detector (`peak_blinks`, drop height 0.072 as the spec gives it);
- "peaks, public-code height": the same with the constant of DinoMan/blink-detector's code (0.0425).
Landmarks: "source" tracks them on the full 360×288 frames; "face" runs the build's preprocessing
(`tasks.preprocess`: the 128×128 aligned face crop) and tracks again on the crops, as evaluation does on the real
test frames. The EAR is unchanged by the alignment itself, so the two differ only by what dlib finds on a smaller,
resampled face. Prints a markdown table beside the paper's row for real GRID videos (0.39 blinks/s, median 0.4 s:
their own landmarks on GRID's test speakers, not s1) and the other three datasets' for scale.

Uses the shared sample corpus (105 clips of speaker s1); falls back to the project's bundled GRID clips, saying
so, when it is absent.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks import align, media  # noqa: E402
from tasks.face import FaceTracker  # noqa: E402
from tasks.metrics.blinks import (  # noqa: E402
    PEAK_HEIGHT, PEAK_HEIGHT_PUBLIC_CODE, blink_statistics, eye_aspect_ratio, peak_blinks, threshold_blinks,
)
from tasks.preprocess import ClipError, PreprocessParams, preprocess_clip  # noqa: E402
from tasks.published import TABLES, markdown_table  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "samples" / "grid"
BUNDLED = ROOT / "samples" / "grid"
FPS = 25.0
DETECTORS = {  # label -> blink_statistics keyword arguments
    "threshold (project)": {"detector": "threshold"},
    f"peaks (authors', height {PEAK_HEIGHT})": {"detector": "peaks", "height": PEAK_HEIGHT},
    f"peaks (authors', public-code height {PEAK_HEIGHT_PUBLIC_CODE})": {"detector": "peaks",
                                                                        "height": PEAK_HEIGHT_PUBLIC_CODE},
}


def ears_on_source(path: Path, tracker: FaceTracker) -> np.ndarray:
    """EAR float64 (N,) of one clip from landmarks tracked on its full decoded frames."""
    track = tracker.track(media.decode(path, FPS).frames)
    return eye_aspect_ratio(align.interpolate_missing(track.landmarks))


def ears_on_face(path: Path, tracker: FaceTracker, params: PreprocessParams) -> np.ndarray:
    """EAR float64 (N,) of one clip from landmarks tracked again on its 128×128 aligned face crops."""
    track = tracker.track(preprocess_clip(path, params, tracker).face)
    return eye_aspect_ratio(align.interpolate_missing(track.landmarks))


def paper_rows() -> list[dict]:
    """Vougioukas et al. 2019 Tab. 4 (real videos) as rows of the output table, GRID first."""
    rows = []
    for table in (t for t in TABLES if t.system == "sda" and t.real):
        for label, values in table.rows.items():
            rows.append({"detector": f"Vougioukas et al. 2019, Tab. 4: {label} (their peaks)", "landmarks": "theirs",
                         "blinks/s": f"{values['blinks_per_s_peaks']:g}",
                         "median duration s": f"{values['blink_duration_s_peaks']:g}",
                         "blinks": "", "clips with a blink": "", "clips": "", "seconds": ""})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-root", type=Path, default=SHARED, help="GRID in its official layout")
    parser.add_argument("--speaker", default="s1")
    parser.add_argument("--max-clips", type=int, default=None, help="the first N clips by name (default: all)")
    parser.add_argument("--landmarks", choices=("source", "face", "both"), default="both")
    args = parser.parse_args()

    root = args.raw_root
    if not (root / args.speaker).is_dir():
        print(f"{root / args.speaker} not found: using the project's bundled clips ({BUNDLED}) instead; "
              "the shared sample corpus (105 s1 clips) gives a far steadier rate.\n")
        root = BUNDLED
    paths = sorted((root / args.speaker).glob("*.mpg"))[:args.max_clips]
    if not paths:
        sys.exit(f"no .mpg clips in {root / args.speaker}")
    modes = ("source", "face") if args.landmarks == "both" else (args.landmarks,)
    tracker, params = FaceTracker(), PreprocessParams()

    ears: dict[str, list[np.ndarray]] = {m: [] for m in modes}
    skipped: dict[str, list[str]] = {m: [] for m in modes}
    started = time.perf_counter()
    for i, path in enumerate(paths, 1):
        for mode in modes:
            try:
                ears[mode].append(ears_on_source(path, tracker) if mode == "source"
                                  else ears_on_face(path, tracker, params))
            except (ClipError, media.MediaError, ValueError) as exc:  # ValueError: no face in any frame
                skipped[mode].append(f"{path.stem} ({exc})")
        if i % 20 == 0 or i == len(paths):
            print(f"  {i}/{len(paths)} clips, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    elapsed = time.perf_counter() - started

    rows = []
    for mode in modes:
        for label, kwargs in DETECTORS.items():
            stats = blink_statistics(ears[mode], FPS, **kwargs)
            per_clip = [len(threshold_blinks(e) if kwargs["detector"] == "threshold"
                            else peak_blinks(e, kwargs["height"])) for e in ears[mode]]
            rows.append({"detector": label,
                         "landmarks": "full frames" if mode == "source" else "128×128 aligned face crops",
                         "blinks/s": f"{stats.blinks_per_second:.3f}",
                         "median duration s": f"{stats.median_duration_s:.3f}", "blinks": str(stats.n_blinks),
                         "clips with a blink": str(sum(n > 0 for n in per_clip)),
                         "clips": str(len(ears[mode])), "seconds": f"{stats.seconds:.1f}"})
    n_frames = sum(len(e) for e in ears[modes[0]])
    print(f"Blinks of real GRID videos: speaker {args.speaker}, {len(paths)} clips from {root} "
          f"({n_frames} frames at {FPS:g} fps); landmarks by this project's dlib tracking; "
          f"{elapsed:.0f} s in all ({len(modes) * n_frames / elapsed:.0f} frames/s over {len(modes)} pass(es)).\n")
    print(markdown_table(rows + paper_rows()))
    for mode in modes:
        if skipped[mode]:
            print(f"Skipped ({mode}): {', '.join(skipped[mode])}")
    print("Durations differ by definition: the threshold rule measures the run below half depth, the peak "
          "detector the open-eye maxima around the closing. The paper measured other speakers (GRID's test "
          "speakers) with its own landmarks; s1 blinks often.")


if __name__ == "__main__":
    main()
