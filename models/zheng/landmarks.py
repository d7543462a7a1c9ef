"""Landmark conventions of Zheng et al. 2020 (ICPR; shared/specs/zheng2020.md §1, §6, §7): the reference-landmark
subsets of Tab. V(a), the word vocabulary of a store, and the frontal/profile split of Tab. V(b).

Landmarks are dlib's 68 points (iBUG 300-W order: jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, lips 48–67) in
pixels of the store's 128×128 `face` crop; the networks see them normalised as x / 64 − 1
(`storage.landmark_pca.normalise`), flattened (x0, y0, x1, y1, …) to 136 values.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.lipreader.text import GRID_VOCABULARY
from storage import location, manifest, store

JAW, NOSE, EYES = range(0, 17), range(27, 36), range(36, 48)
MOUTH = range(48, 68)
# [D] the paper names the removed parts and the points left (Tab. V(a)), not which lip points "part of the lip",
# "upper lip" and "right lip" are: upper lip = outer 49–53 + inner 61–63 (8); right lip (the subject's right, the
# image's left) = outer 48–50, 58, 59 + inner 60, 61, 67 (8); part of the lip = the inner contour 60–67 and the two
# corners 48, 54 (10). The counts match the paper's 47, 51, 58, 60 and 60.
_REMOVED = {
    "all": (),
    "no_eyes_nose": (*NOSE, *EYES),
    "no_jaw": tuple(JAW),
    "no_part_lip": (48, 54, *range(60, 68)),
    "no_upper_lip": (49, 50, 51, 52, 53, 61, 62, 63),
    "no_right_lip": (48, 49, 50, 58, 59, 60, 61, 67),
}
SUBSETS = tuple(_REMOVED)
SUBSET_POINTS = {name: 68 - len(removed) for name, removed in _REMOVED.items()}  # 68, 47, 51, 58, 60, 60

FRONTAL_MAX_YAW, PROFILE_MIN_YAW = 10.0, 30.0  # degrees [D], Tab. V(b)


def subset_mask(name: str) -> np.ndarray:
    """bool (68,): the points kept by the Tab. V(a) setting `name` (`SUBSETS`). Raises KeyError on another name."""
    if name not in _REMOVED:
        raise KeyError(f"unknown landmark subset {name!r}; known: {', '.join(SUBSETS)}")
    mask = np.ones(68, bool)
    mask[list(_REMOVED[name])] = False
    return mask


def flat_mask(name: str) -> torch.Tensor:
    """float32 (136,): `subset_mask` repeated for x and y, the (x0, y0, x1, y1, …) layout of the networks."""
    return torch.from_numpy(np.repeat(subset_mask(name), 2).astype(np.float32))


def vocabulary(store_dir: Path) -> tuple[str, ...]:
    """The word classes of a store's word detector, sorted: GRID's 51 words for a GRID store (whatever its clips
    say, so every GRID head is the same), else every timed word of the store's ok clips (LRW: the folder words, 500
    for the full corpus). Raises ValueError when the store has no timed word."""
    if store.read_card(store_dir)["dataset"] == "grid":
        return tuple(sorted(GRID_VOCABULARY))
    rows = manifest.read(location.as_path(store_dir) / store.MANIFEST)
    rows = rows[(rows["status"] == manifest.OK) & rows["words_timed"].fillna(False).astype(bool)]
    words = sorted({w["word"] for ws in rows["words"] for w in ws})
    if not words:
        raise ValueError(f"{store_dir}: no ok clip has timed words, so there is no word to detect")
    return tuple(words)


def pose_group(yaw_deg: float) -> str:
    """"frontal" (|yaw| < 10°), "profile" (|yaw| > 30°) or "between" [D] for a clip's largest |yaw| (the manifest's
    `head_yaw_deg`), or "unknown" when it is missing (Tab. V(b))."""
    if yaw_deg is None or not np.isfinite(yaw_deg):
        return "unknown"
    yaw = abs(float(yaw_deg))
    return "frontal" if yaw < FRONTAL_MAX_YAW else "profile" if yaw > PROFILE_MIN_YAW else "between"
