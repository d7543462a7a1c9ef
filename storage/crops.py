"""The store's crops as named specs (DESIGN "The store"): each is one per-frame uint8 field of the shards, RGB
(N, H, W, 3), cut from the decoded frames by its own alignment (`tasks.align.crop_transforms`).

| name | default (H, W) | alignment | source |
|---|---|---|---|
| `face` | 128 × 128 | similarity from points 27–44 (nose, eyes) onto a template | Chen et al. CVPR 2019 (ATVGnet) |
| `mouth` | 64 × 64 | square of side 1.3 × the box around points 48–67, in the face alignment | Chen et al. ECCV 2018 |
| `face_sda` | 128 × 96 | similarity from points 33, 36, 39, 42, 45 onto a mean face | Vougioukas et al. IJCV 2019 |

The alignment points of every crop are averaged over the build's `smooth_window` frames (7; Vougioukas et al.). A
build names the crops it cuts and their sizes in its parameters (`crops`, part of the store's version digest);
`face` is always cut, since `landmarks` and `transform` are in its pixels. A system reads one of them
(`models.system.System.crop`), a training stage declares the fields it reads (`models.system.Stage.reads`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Crop:
    """A crop a system renders or reads: the store field's name and its size (H, W) in pixels."""

    field: str
    size: tuple[int, int]


@dataclass(frozen=True)
class CropSpec:
    """How the build cuts a named crop: its default size (H, W), the dlib points its alignment is fitted on, whether
    it must be square, and the paper it comes from."""

    name: str
    default_size: tuple[int, int]
    points: tuple[int, ...]
    square: bool
    source: str


CROPS: dict[str, CropSpec] = {
    "face": CropSpec("face", (128, 128), tuple(range(27, 45)), True, "Chen et al. CVPR 2019 (ATVGnet)"),
    "mouth": CropSpec("mouth", (64, 64), tuple(range(48, 68)), True, "Chen et al. ECCV 2018"),
    "face_sda": CropSpec("face_sda", (128, 96), (33, 36, 39, 42, 45), False, "Vougioukas et al. IJCV 2019"),
}
REQUIRED = "face"  # the store's landmarks and transform are in its pixels
DEFAULT_CROPS: dict[str, tuple[int, int]] = {name: spec.default_size for name, spec in CROPS.items()}
MIN_SIDE, MAX_SIDE = 16, 512

FACE, MOUTH, FACE_SDA = (Crop(name, spec.default_size) for name, spec in CROPS.items())


def check_crops(crops: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """`crops` (name → (H, W) px) in `CROPS` order, after checking it. Raises ValueError naming the problem: an
    unknown name (listing the known ones), no `face`, a side outside 16–512 px, a non-square size for a square crop."""
    unknown = sorted(set(crops) - set(CROPS))
    if unknown:
        raise ValueError(f"unknown crop {', '.join(unknown)}; the store's crops are {', '.join(CROPS)}")
    if REQUIRED not in crops:
        raise ValueError(f"the crops must include {REQUIRED!r} (the store's landmarks are in its pixels)")
    out = {}
    for name, spec in CROPS.items():
        if name not in crops:
            continue
        h, w = (int(v) for v in crops[name])
        if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
            raise ValueError(f"crop {name} is {h}x{w}: each side must be {MIN_SIDE}–{MAX_SIDE} px")
        if spec.square and h != w:
            raise ValueError(f"crop {name} is square: got {h}x{w}")
        out[name] = (h, w)
    return out


def parse_crop(text: str) -> tuple[str, tuple[int, int]]:
    """'face_sda=128x96' → ('face_sda', (128, 96)); 'mouth' → ('mouth', its default size). Sizes are H x W.
    Raises ValueError for another form or an unknown name."""
    m = re.fullmatch(r"\s*([a-z_]+)\s*(?:=\s*(\d+)\s*[xX×]\s*(\d+))?\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not NAME or NAME=HxW (e.g. face_sda=128x96)")
    name = m.group(1)
    if name not in CROPS:
        raise ValueError(f"unknown crop {name}; the store's crops are {', '.join(CROPS)}")
    return name, ((int(m.group(2)), int(m.group(3))) if m.group(2) else CROPS[name].default_size)


def format_crop(name: str, size: tuple[int, int]) -> str:
    """('face_sda', (128, 96)) → 'face_sda=128x96' (what `parse_crop` reads)."""
    return f"{name}={size[0]}x{size[1]}"
