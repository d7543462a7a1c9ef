"""Images of a VG-net training step for MLflow: generated frames over real ones, and attention maps, as uint8 grids."""
from __future__ import annotations

import numpy as np
import torch


def to_uint8(images: torch.Tensor, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """float (..., C, H, W) in [low, high] -> uint8 (..., H, W, 3) (one channel repeated to three)."""
    x = ((images.detach().float().cpu() - low) / (high - low)).clamp(0, 1).mul(255).round().to(torch.uint8)
    if x.shape[-3] == 1:
        x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    return x.movedim(-3, -1).numpy()


def tile(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Rows of frames, each uint8 (n, H, W, 3) with the same n, H, W -> one uint8 (R*(H+pad)-pad, n*(W+pad)-pad, 3)
    image, padded in white."""
    n, H, W, _ = rows[0].shape
    out = np.full((len(rows) * (H + pad) - pad, n * (W + pad) - pad, 3), 255, dtype=np.uint8)
    for r, frames in enumerate(rows):
        for c, frame in enumerate(frames):
            out[r * (H + pad) : r * (H + pad) + H, c * (W + pad) : c * (W + pad) + W] = frame
    return out


def sample_grids(fake: torch.Tensor, real: torch.Tensor, attention: torch.Tensor, *, max_items: int = 2,
                 max_frames: int = 8) -> dict[str, np.ndarray]:
    """Images of one batch for `on_sample`, uint8 HWC:
      "frames": per clip (up to `max_items`), a row of generated frames over a row of the real ones;
      "attention": per clip, a row of attention maps (white = the generated motion, black = the example face).
    fake, real: (B, T, 3, H, W) in [-1, 1]; attention (B, T, 1, H, W) in [0, 1]. At most `max_frames` frames per
    row, evenly spaced over T."""
    B, T = fake.shape[:2]
    cols = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    items = range(min(B, max_items))
    frames = [row for b in items for row in (to_uint8(fake[b, cols]), to_uint8(real[b, cols]))]
    maps = [to_uint8(attention[b, cols], 0.0, 1.0) for b in items]
    return {"frames": tile(frames), "attention": tile(maps)}
