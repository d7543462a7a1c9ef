"""The preprocessing the authors' released ATVGnet weights expect (lelechen63/ATVGnet `code/demo.py`), which differs
from talkface's store: their face alignment and their landmark space. Constants from `authors_basics/` (MIT; its
SOURCES.md). Pure numpy + scikit-image.

- Alignment (`demo.py` lines 125-147): a similarity transform estimated from their template's points 27-44 onto the
  face's (`SimilarityTransform.estimate(template[27:45], lm[27:45])`), used as the inverse map of a 163x163 warp,
  cropped to [1:129, 1:129]. The template is `base_68` when the eyes are open (their test: sum of y37, y38 minus
  y40, y41 below -9 px in their 163-px face box) and `base_68_close` otherwise; in the release both files hold the
  same points, so the choice never changes the crop. Here the test is made in the template's own 163-px frame, where
  their face box puts the face at the same scale.
- Example landmarks (`normLmarks`, lines 80-102): for one image their function returns the same shape whatever the
  face (the mean shape minus a fixed open-mouth offset in their 100-mode shape basis S), so it is a constant here.
- Landmark space: the 136 values (x0, y0, x1, ...) of that Procrustes-normalised shape x 5; AT-net sees
  (5 l - mean_lrw1) @ U_lrw1[:, :6], VG-net the 6-component reconstruction (demo lines 174-175, 210-212, 237-241).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from skimage.transform import SimilarityTransform

BASICS = Path(__file__).resolve().parent / "authors_basics"
ALIGN = slice(27, 45)
WARP_SIZE, CROP = 163, 128  # their warp and crop [1:129, 1:129]
EYES_OPEN_BELOW = -9.0  # px, their eye-openness test
SCALE = 5.0  # their landmarks x 5 for both networks


@dataclass(frozen=True)
class Basics:
    """The authors' constants: templates float64 (68, 2) in 163-px warp pixels (open, closed eyes); pca float64
    (136, 6) (U_lrw1's first 6 columns) and mean float64 (136,) in x5 units; example float64 (136,), the
    normalised example landmarks (x1 units) of `normLmarks` for one image."""

    template_open: np.ndarray
    template_closed: np.ndarray
    pca: np.ndarray
    mean: np.ndarray
    example: np.ndarray


def example_landmarks(mean_shape_norm: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """`normLmarks` of one image (demo.py lines 80-102): float64 (136,). With one frame their `init_params` equals the
    frame's own parameters, so params = -open_mouth_params and the result is MSK - open_mouth_params @ S: the mean
    shape with the mouth offset of mode 1 (-0.06) on points 48-67 projected through S and back, negated."""
    msk = np.asarray(mean_shape_norm, np.float64).reshape(1, 136)
    basis = np.asarray(basis, np.float64)  # (100, 136)
    mouth = np.zeros((1, basis.shape[0]))
    mouth[:, 1] = -0.06
    opened = msk.copy()
    opened[:, 96:] += (mouth @ basis)[:, 96:]
    open_mouth_params = (basis @ (opened[0] - msk[0])).reshape(1, -1)  # (1, 100)
    return (msk - open_mouth_params @ basis)[0]


@lru_cache(maxsize=4)
def load_basics(folder: Path = BASICS) -> Basics:
    """The constants from a folder holding the authors' `basics/` files (default: the shipped copy). Raises
    FileNotFoundError naming a missing file."""
    folder = Path(folder)

    def read(name: str) -> np.ndarray:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"ATVGnet basics: no {name} in {folder} (the authors' basics/ folder)")
        return np.load(path).astype(np.float64)

    return Basics(read("base_68.npy"), read("base_68_close.npy"), read("U_lrw1.npy")[:, :6], read("mean_lrw1.npy"),
                  example_landmarks(read("mean_shape_norm.npy"), read("S.npy")))


def alignment(landmarks: np.ndarray, basics: Basics) -> np.ndarray:
    """float64 (3, 3): image pixels -> pixels of the authors' 128x128 crop, for a face with dlib landmarks float
    (68, 2) in those image pixels (module docstring). Their transform maps the template onto the face; this is its
    inverse, shifted by their crop's one-pixel offset."""
    landmarks = np.asarray(landmarks, np.float64)
    closed = SimilarityTransform.from_estimate(basics.template_closed[ALIGN], landmarks[ALIGN])
    in_warp = closed.inverse(landmarks)  # the face in the 163-px frame
    opened = np.sum(in_warp[37:39, 1] - in_warp[40:42, 1]) < EYES_OPEN_BELOW
    template = basics.template_open if opened else basics.template_closed
    tform = SimilarityTransform.from_estimate(template[ALIGN], landmarks[ALIGN])
    shift = np.array([[1.0, 0, -1], [0, 1, -1], [0, 0, 1]])  # [1:129, 1:129]
    return shift @ np.linalg.inv(tform.params)


def warp(image: np.ndarray, matrix: np.ndarray, fill: int | None = 0) -> np.ndarray:
    """uint8 (128, 128, 3): `image` uint8 (H, W, 3) seen through `matrix` float (3, 3) (image -> crop pixels),
    bilinear, truncated to uint8 as their `np.array(tf.warp(...) * 255, dtype=np.uint8)`. fill: the value outside
    the image (0: black, as their warp of the whole photo), None: its edge pixels repeated (for an image that is
    itself a crop)."""
    import cv2

    border = dict(borderMode=cv2.BORDER_REPLICATE) if fill is None else dict(borderMode=cv2.BORDER_CONSTANT,
                                                                              borderValue=fill)
    warped = cv2.warpAffine(np.asarray(image, np.float32), np.asarray(matrix, np.float64)[:2], (CROP, CROP),
                            flags=cv2.INTER_LINEAR, **border)
    return np.clip(warped, 0, 255).astype(np.uint8)


def align_image(image: np.ndarray, landmarks: np.ndarray, basics: Basics) -> tuple[np.ndarray, np.ndarray]:
    """(crop uint8 (128, 128, 3), transform float64 (3, 3) image -> crop pixels): the authors' aligned face of an RGB
    uint8 image, bilinear, black outside the image, as their `tf.warp` (truncated to uint8 as theirs)."""
    matrix = alignment(landmarks, basics)
    return warp(image, matrix, fill=0), matrix
