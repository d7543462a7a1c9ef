"""Vougioukas et al.'s released generators (`grid.dat`, `timit.dat`, `crema.dat`) rendering a store's face by the
authors' protocol (DinoMan/speech-driven-animation `sda/sda.py`, `VideoAnimator`): what `talkface generate / evaluate
--model models:/sda@authors-grid` run (`AuthorsSDATalker`, the `models.system` Generator; imported by `talkface
import-weights`, `authors_file.import_released`).

The caller gives what every generator gets: the store's 128x96 `face_sda` crop of the still frame, its landmarks in
crop pixels and 16 kHz speech. Then, as their `VideoAnimator.__call__` does:
1. The still is re-aligned to the file's own mean face (`preprocess_img`, sda.py lines 190-197): a similarity from
   points 33, 36, 39, 42, 45 onto `mean_face`'s, bilinear (the store crop's edge pixels repeated where their crop
   reaches past it, since theirs is cut from the whole photo).
2. The speech at the model's rate (FFT resampling, lines 250-258), one 0.2 s window per video frame centred on it
   (lines 262-269; `generator.audio_windows`).
3. The noise: N(0, 0.33²) per frame (line 272; seeded here, so a video is reproducible).
4. Frames in [-1, 1] -> uint8 by (x + 1) x 127.5 (their `125 x + 125`, line 283, maps to [0, 250] and is not
   clipped; talkface uses the fixed full-range map so frames are comparable with the store's).
5. Each frame warped back into the store's crop (`storage.paste.paste_back`, feathered), the still's pixels outside
   their crop kept, so it is scored against the store's real frames like every other system.
Pure torch, numpy and OpenCV (no Prefect, MLflow or face-alignment).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.transform import SimilarityTransform

from models.sda.generator import SDAGenerator, SDAGeneratorConfig
from models.sda.inference import STAGE, SYSTEM, SDATalker
from models.weights import load_module, read_weights
from storage.paste import paste_back

PROTOCOL = "authors"
STABLE_POINTS = [33, 36, 39, 42, 45]  # sda.py line 113, `stablePntsIDs`


def alignment(landmarks: np.ndarray, mean_face: np.ndarray) -> np.ndarray:
    """float64 (3, 3): pixels of the image `landmarks` float (68, 2) are in -> pixels of the authors' crop, the
    least-squares similarity of points 33, 36, 39, 42, 45 onto `mean_face` float (68, 2)'s (their
    `tf.estimate_transform('similarity', src, dst)`)."""
    src = np.asarray(landmarks, np.float64)[STABLE_POINTS]
    dst = np.asarray(mean_face, np.float64)[STABLE_POINTS]
    return SimilarityTransform.from_estimate(src, dst).params


class AuthorsSDATalker(SDATalker):
    """The authors' generator behind the store's interface (module docstring): still uint8 (128, 96, 3) `face_sda`
    crop + its landmarks float32 (68, 2) in crop pixels + audio int16 (S,) at 16 kHz -> uint8 (n_frames, 128, 96, 3)
    RGB frames of the store's crop.

    generator: the released networks (`authors_file.generator_state`); mean_face: float (68, 2), the file's, in
    pixels of their 128x96 crop; seed, batch: as `SDATalker`.
    """

    def __init__(self, generator: SDAGenerator, mean_face: np.ndarray, seed: int = 0, batch: int = 64):
        super().__init__(generator, seed=seed, batch=batch)
        mean_face = np.asarray(mean_face, np.float64)
        if mean_face.shape != (68, 2):
            raise ValueError(f"mean_face must be (68, 2), got {mean_face.shape}")
        self.mean_face = mean_face

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> "AuthorsSDATalker":
        """From a model directory `talkface import-weights --system sda` wrote (sda.pt with `extra["protocol"] ==
        "authors"` and the file's `mean_face`), on `device`. Raises as `models.weights.read_weights`, ValueError for
        a directory trained by talkface."""
        state = read_weights(Path(model_dir) / f"{STAGE}.pt", SYSTEM, STAGE)
        if state["extra"].get("protocol") != PROTOCOL:
            raise ValueError(f"{model_dir} holds a generator trained by talkface, not the authors' release")
        generator = SDAGenerator(SDAGeneratorConfig.from_dict(state["config"]["generator"]))
        load_module(generator, state["modules"]["generator"], Path(model_dir) / f"{STAGE}.pt", "generator")
        return cls(generator.to(device).eval(), state["extra"]["mean_face"].double().numpy())

    def __call__(self, still: np.ndarray, still_landmarks: np.ndarray | None, audio: np.ndarray,
                 n_frames: int) -> np.ndarray:
        if still_landmarks is None:
            raise ValueError("the authors' protocol aligns the still by its landmarks: give them")
        H, W = self.crop.size
        to_theirs = alignment(still_landmarks, self.mean_face)
        theirs = cv2.warpAffine(np.asarray(still, np.float32), to_theirs[:2], (W, H), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        frames = super().__call__(np.clip(theirs, 0, 255).astype(np.uint8), None, audio, n_frames)
        return paste_back(np.asarray(still), frames, to_theirs[:2], feather=4)
