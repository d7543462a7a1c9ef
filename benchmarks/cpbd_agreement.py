"""talkface's CPBD against the `cpbd` package on real frames (issue 13, item 7).

    .venv/bin/python benchmarks/cpbd_agreement.py --package-python /tmp/cpbdvenv/bin/python
        [--corpus bundled|shared] [--record]

The published CPBD numbers (Chen et al. 2018, Vougioukas et al. 2019) come from the `cpbd` package 1.0.x, the Python
port of Narvekar & Karam's MATLAB code. Its licence is not free, so talkface neither ships nor imports it: make a
separate environment for it (`python3 -m venv /tmp/cpbdvenv && /tmp/cpbdvenv/bin/pip install cpbd-py312`, the fork
that imports on current SciPy) and name its Python here; this script runs it in a subprocess on the same grey frames.

Frames (uint8 grey, cv2.COLOR_RGB2GRAY of the RGB the pipeline produces):
- bundled: the project's GRID clips (`samples/grid`, 14 clips), frames 15 and 45 of each: the full 360×288 decoded
  frame (`tasks.media`) and the store's face (128×128), mouth (64×64) and face_sda (128×96) crops
  (`tasks.preprocess`).
- shared: the bundled set plus every 5th s1 clip of the shared corpus (frames 15 and 45, the same four kinds), the
  four CREMA-D clips (full 480×360 frames and face crops) and the LRW still (256×256).

Prints, per group, the package's mean, talkface's "reference" (the default) and "talkface_v1" variants and their
largest difference, then an ablation: talkface_v1 with one step at a time switched to the reference rule (the edge
blocks' Canny, the width-measuring edges and widths, the blur decision), as the mean ratio to the package.

`--record` (bundled corpus only) writes the frames (every crop, the full frames at frame 15) and the package's values
to tests/tasks/metrics/cpbd_reference.npz and cpbd_reference.json, which tests/tasks/metrics/test_cpbd.py checks the
default variant against.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks import media  # noqa: E402
from tasks.face import FaceTracker  # noqa: E402
from tasks.metrics.cpbd import (  # noqa: E402
    block_probabilities, canny_edges, cpbd, edge_widths, grey, sharp_share,
)
from tasks.preprocess import ClipError, PreprocessParams, preprocess_clip  # noqa: E402
from tasks.published import markdown_table  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "samples"
BUNDLED = ROOT / "samples" / "grid"
RECORD = ROOT / "tests" / "tasks" / "metrics" / "cpbd_reference"
FRAME_INDICES = (15, 45)
CROPS = ("face", "mouth", "face_sda")

PACKAGE_SCRIPT = """
import json, sys
import numpy as np
from importlib.metadata import version
from cpbd import compute
frames = np.load(sys.argv[1])
print(json.dumps({"version": version("cpbd-py312"), "values": {k: float(compute(frames[k])) for k in frames.files}}))
"""


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB → uint8 (H, W) grey, as `tasks.metrics.cpbd.grey` converts it."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def clip_frames(path: Path, group: str, tracker: FaceTracker, params: PreprocessParams,
                crops: tuple[str, ...] = CROPS) -> dict[str, np.ndarray]:
    """Grey frames of one video: key '<group>/<kind>/<clip>/<frame>' → uint8 (H, W); the crops only when the
    preprocessing succeeds (a clip without a face keeps its full frames, saying so)."""
    out = {}
    full = media.decode(path, params.fps, params.sample_rate).frames
    try:
        arrays = preprocess_clip(path, params, tracker)
    except ClipError as exc:
        print(f"{path.name}: no crops ({exc})", file=sys.stderr)
        arrays = None
    for i in FRAME_INDICES:
        if i >= len(full):
            continue
        out[f"{group}/full/{path.stem}/{i}"] = to_grey(full[i])
        for kind in crops if arrays is not None else ():
            out[f"{group}/{kind}/{path.stem}/{i}"] = to_grey(arrays.crops[kind][i])
    return out


def collect(corpus: str) -> dict[str, np.ndarray]:
    """The benchmark's grey frames, sorted by key (module docstring)."""
    tracker, params = FaceTracker(), PreprocessParams()
    frames: dict[str, np.ndarray] = {}
    for path in sorted(BUNDLED.glob("*/*.mpg")):
        frames.update(clip_frames(path, "grid", tracker, params))
    if corpus == "shared":
        bundled = {p.name for p in BUNDLED.glob("*/*.mpg")}
        extra = [p for p in sorted((SHARED / "grid" / "s1").glob("*.mpg")) if p.name not in bundled][::5]
        for path in extra:
            frames.update(clip_frames(path, "grid", tracker, params))
        for path in sorted((SHARED / "crema_d" / "VideoFlash").glob("*.flv")):
            frames.update(clip_frames(path, "crema_d", tracker, params, crops=("face",)))
        for path in sorted((SHARED / "lrw").glob("*.jpg")):
            frames[f"lrw/full/{path.stem}/0"] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return dict(sorted(frames.items()))


def package_values(frames: dict[str, np.ndarray], python: str) -> tuple[str, dict[str, float]]:
    """(package version, key → the package's `cpbd.compute` of the frame), run by `python` in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="talkface-cpbd-") as tmp:
        path = Path(tmp) / "frames.npz"
        np.savez(path, **{k.replace("/", "|"): v for k, v in frames.items()})
        done = subprocess.run([python, "-c", PACKAGE_SCRIPT, str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the cpbd package failed under {python}:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    return result["version"], {k.replace("|", "/"): v for k, v in result["values"].items()}


def mixed(image: np.ndarray, canny_variant: str, width_variant: str, decision_variant: str) -> float:
    """CPBD of a uint8 grey (H, W) image with each step's rule taken from the named variant (the ablation)."""
    g = grey(image)
    probabilities = block_probabilities(g, edge_widths(g, width_variant), canny_edges(g, canny_variant))
    return sharp_share(probabilities, decision_variant)


def group_of(key: str) -> str:
    return "/".join(key.split("/")[:2])


def agreement_rows(frames: dict[str, np.ndarray], package: dict[str, float]) -> list[dict]:
    """One row per group (dataset/kind) and one for all frames: means and the largest |reference − package|."""
    ours = {k: cpbd(v) for k, v in frames.items()}
    v1 = {k: cpbd(v, variant="talkface_v1") for k, v in frames.items()}
    groups = sorted({group_of(k) for k in frames}) + ["all"]
    rows = []
    for group in groups:
        keys = [k for k in frames if group == "all" or group_of(k) == group]
        pkg = np.array([package[k] for k in keys])
        ref = np.array([ours[k] for k in keys])
        old = np.array([v1[k] for k in keys])
        rows.append({"frames": group, "n": len(keys), "package": float(pkg.mean()), "reference": float(ref.mean()),
                     "max abs(reference - package)": f"{np.abs(ref - pkg).max():.1e}",
                     "talkface_v1": float(old.mean()), "talkface_v1 / package": float(old.mean() / pkg.mean())})
    return rows


def ablation_rows(frames: dict[str, np.ndarray], package: dict[str, float]) -> list[dict]:
    """talkface_v1 with one step switched to the reference rule: mean score and mean ratio to the package."""
    settings = {
        "talkface_v1": ("talkface_v1", "talkface_v1", "talkface_v1"),
        "+ reference Canny (edge blocks)": ("reference", "talkface_v1", "talkface_v1"),
        "+ reference Sobel edges and widths": ("talkface_v1", "reference", "talkface_v1"),
        "+ reference decision (round(100 P) <= 63)": ("talkface_v1", "talkface_v1", "reference"),
        "reference (all three)": ("reference", "reference", "reference"),
    }
    keys = [k for k in frames if package[k] > 0]
    pkg = np.array([package[k] for k in keys])
    rows = []
    for label, variants in settings.items():
        score = np.array([mixed(frames[k], *variants) for k in keys])
        rows.append({"rules": label, "mean CPBD": float(score.mean()), "mean package": float(pkg.mean()),
                     "mean ratio to package": float(np.mean(score / pkg))})
    return rows


def record(frames: dict[str, np.ndarray], version: str, package: dict[str, float]) -> None:
    """Write the bundled frames (npz) and the package's values (json) for tests/tasks/metrics/test_cpbd.py: every
    crop, and the full frames at frame 15 only (they make half of the 1.4 MB file)."""
    frames = {k: v for k, v in frames.items() if "/full/" not in k or k.endswith(f"/{FRAME_INDICES[0]}")}
    package = {k: package[k] for k in frames}
    np.savez_compressed(RECORD.with_suffix(".npz"), **{k.replace("/", "|"): v for k, v in frames.items()})
    facts = {"package": f"cpbd-py312 {version}", "frame_keys": "<dataset>/<kind>/<clip>/<frame index at 25 fps>",
             "made_by": "benchmarks/cpbd_agreement.py --record", "values": package}
    RECORD.with_suffix(".json").write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(frames)} frames: {RECORD}.npz / .json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-python", required=True, help="a Python with the cpbd package (cpbd-py312)")
    parser.add_argument("--corpus", choices=("bundled", "shared"), default="shared")
    parser.add_argument("--record", action="store_true", help="write the bundled frames and values for the test")
    args = parser.parse_args()
    corpus = "bundled" if args.record else args.corpus
    if corpus == "shared" and not SHARED.exists():
        print(f"{SHARED} is absent: using the bundled clips only", file=sys.stderr)
        corpus = "bundled"
    start = time.perf_counter()
    frames = collect(corpus)
    version, package = package_values(frames, args.package_python)
    print(f"{len(frames)} frames ({corpus}), cpbd-py312 {version}, {time.perf_counter() - start:.0f} s\n")
    print(markdown_table(agreement_rows(frames, package)))
    print(markdown_table(ablation_rows(frames, package)))
    if args.record:
        record(frames, version, package)


if __name__ == "__main__":
    main()
