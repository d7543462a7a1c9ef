"""A montage of sample face crops with their landmarks drawn: the build's visual check that alignment worked."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from skimage.util import montage as tile

from storage import location, manifest, shards


def draw_landmarks(face: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Copy of a face crop uint8 (H, W, 3) RGB with 68 landmarks (68, 2) in crop pixels drawn as dots
    (green; mouth 48–67 red)."""
    out = face.copy()
    for i, (x, y) in enumerate(landmarks):
        colour = (255, 40, 40) if i >= 48 else (40, 255, 40)
        cv2.circle(out, (int(round(x)), int(round(y))), 1, colour, -1, lineType=cv2.LINE_AA)
    return out


def sample_montage(store_dir: Path, table: pd.DataFrame, n: int = 16, seed: int = 0) -> np.ndarray:
    """Up to `n` ok clips (chosen with `seed`), the middle frame of each with its landmarks, tiled:
    uint8 (rows·H, cols·W, 3) RGB. Raises ValueError when the table has no ok clip."""
    ok = table[table.status == manifest.OK]
    if ok.empty:
        raise ValueError("no ok clip to show")
    picked = ok.sample(min(n, len(ok)), random_state=seed).sort_values("clip_id")
    tiles = []
    for row in picked.itertuples():
        group = shards.open_shard(store_dir, row.shard)
        t = int(row.frame_start + row.n_frames // 2)
        tiles.append(draw_landmarks(group["face"][t], group["landmarks"][t]))
    return tile(np.stack(tiles), channel_axis=-1, fill=(0, 0, 0)).astype(np.uint8)


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write an RGB uint8 image as PNG to a local or object-store path. Raises OSError when it cannot be encoded."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    location.write_bytes(location.as_path(path), png.tobytes())
    return path
