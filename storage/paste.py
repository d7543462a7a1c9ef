"""A generated crop put back into the image it was cut from: the inverse of the crop's similarity transform, blended
with a feathered mask so the crop's edges do not show (what `talkface generate` shows a user, what evaluation's
landmark scoring sees, and how a released model's crop in its authors' alignment returns to the store's crop).
Pure numpy + OpenCV."""
from __future__ import annotations

import cv2
import numpy as np


def feather_mask(size: tuple[int, int], feather: int) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 1 inside the crop, falling smoothly to 0 over its outer `feather` pixels."""
    h, w = size
    mask = np.zeros((h, w), np.float32)
    mask[feather : h - feather, feather : w - feather] = 1.0
    if feather:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=feather / 2, borderType=cv2.BORDER_CONSTANT)
    return mask


def paste_back(photo: np.ndarray, frames: np.ndarray, transform: np.ndarray, feather: int = 8) -> np.ndarray:
    """Generated crops put back into the photo they were cut from.

    photo: uint8 (H, W, 3) RGB; frames: uint8 (n, h, w, 3) RGB crops; transform: float (2, 3), the similarity that
    maps photo pixels to crop pixels (`prepare_photo`). Each frame is warped into the photo through the inverse
    transform (bilinear) and blended with a feathered mask (`feather_mask`, warped the same way), so the crop's
    edges do not show. Returns uint8 (n, H, W, 3).
    """
    h, w = frames.shape[1:3]
    H, W = photo.shape[:2]
    inverse = cv2.invertAffineTransform(np.asarray(transform, np.float64))
    mask = cv2.warpAffine(feather_mask((h, w), min(feather, min(h, w) // 4)), inverse, (W, H),
                          flags=cv2.INTER_LINEAR, borderValue=0)[..., None]  # (H, W, 1)
    background = photo.astype(np.float32) * (1.0 - mask)
    out = np.empty((len(frames), H, W, 3), np.uint8)
    for i, frame in enumerate(frames):
        warped = cv2.warpAffine(frame, inverse, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[i] = np.clip(background + warped.astype(np.float32) * mask + 0.5, 0, 255).astype(np.uint8)
    return out
