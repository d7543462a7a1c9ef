"""Zheng et al. 2020's generator for inference (ICPR; shared/specs/zheng2020.md §1, §4): a still aligned face crop,
its landmarks and 16 kHz speech -> uint8 frames of the face saying it. What `evaluate`, `generate` and the
benchmark see of a trained model (`ZhengGenerator`, the `models.system` Generator).

1. MFCC of the speech (`storage.audio.mfcc`, 100 Hz; `ZhengGenerator.audio_features`) and one 28×12 window per
   video frame (ATVGnet's input).
2. `predict_landmarks`: A2L over the whole utterance at once (its LSTM runs over any length, as ATVGnet's demo runs
   AT-net), the still's landmarks as l_ref (points outside the model's Tab. V subset zeroed); landmarks in crop
   pixels.
3. L2F per frame: the still face and the 68 heatmaps of that frame's landmarks (σ of the trained model; channels
   outside the subset empty) through the U-Net, `batch` frames per pass.
Pure torch and numpy (no Prefect, MLflow or dlib).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.atvgnet.data import mfcc_windows
from models.system import eval_mode
from models.weights import load_module, read_weights
from models.zheng.a2l import A2L, A2LConfig
from models.zheng.data import flat_landmarks
from models.zheng.l2f import L2FConfig, UNetGenerator, landmark_heatmaps
from models.zheng.landmarks import flat_mask, subset_mask
from storage import audio as storage_audio
from storage.crops import FACE

SYSTEM = "zheng"


def load_a2l(path: Path, device: str | torch.device = "cpu") -> tuple[A2L, str]:
    """(A2L in eval mode on `device`, its landmark subset) from an a2l checkpoint or model-directory file. Raises as
    `models.weights.read_weights`."""
    state = read_weights(path, SYSTEM, "a2l")
    model = A2L(A2LConfig.from_dict(state["config"]["model"]))
    load_module(model, state["modules"]["a2l"], path, "A2L")
    return model.to(device).eval(), state["config"]["landmark_subset"]


def load_l2f(path: Path, device: str | torch.device = "cpu") -> tuple[UNetGenerator, str]:
    """(the L2F U-Net in eval mode on `device`, its landmark subset) from an l2f checkpoint or model-directory
    file. Raises as `models.weights.read_weights`."""
    state = read_weights(path, SYSTEM, "l2f")
    model = UNetGenerator(L2FConfig.from_dict(state["config"]["model"]))
    load_module(model, state["modules"]["generator"], path, "L2F")
    return model.to(device).eval(), state["config"]["landmark_subset"]


def predict_landmarks(a2l: A2L, still_landmarks: np.ndarray, audio: np.ndarray, n_frames: int,
                      landmark_subset: str = "all", crop_size: int = 128) -> np.ndarray:
    """A2L's landmarks float32 (n_frames, 68, 2) in crop pixels for the speech int16 (S,) at 16 kHz:
    `mfcc_landmarks` on its MFCC (`storage.audio.mfcc`). Raises ValueError when n_frames < 1."""
    return mfcc_landmarks(a2l, still_landmarks, storage_audio.mfcc(np.asarray(audio)), n_frames, landmark_subset,
                          crop_size)


def mfcc_landmarks(a2l: A2L, still_landmarks: np.ndarray, mfcc: np.ndarray, n_frames: int,
                   landmark_subset: str = "all", crop_size: int = 128) -> np.ndarray:
    """A2L's landmarks float32 (n_frames, 68, 2) in crop pixels from the MFCC float32 (A, 13) at 100 Hz of the
    speech (one 28 x 12 window per video frame, `mfcc_windows`) and the still's landmarks float (68, 2) in pixels of
    a `crop_size` crop, points outside `landmark_subset` zeroed in l_ref (module docstring, 2.). A2L runs in eval
    mode on its own device (its training flags restored afterwards). Raises ValueError when n_frames < 1."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    dev = next(a2l.parameters()).device
    windows = mfcc_windows(np.asarray(mfcc, np.float32), np.arange(n_frames))  # (n, 28, 12)
    reference = torch.from_numpy(flat_landmarks(np.asarray(still_landmarks, np.float32), crop_size))[None].to(dev)
    with eval_mode(a2l), torch.inference_mode():
        pred = a2l(reference * flat_mask(landmark_subset).to(dev), torch.from_numpy(windows)[None].to(dev))
    return ((pred[0].float().cpu().numpy().reshape(n_frames, 68, 2) + 1) * (crop_size / 2)).astype(np.float32)


class ZhengGenerator:
    """still uint8 (128, 128, 3) aligned face crop + its landmarks float32 (68, 2) in crop pixels + audio int16 (S,)
    at 16 kHz -> uint8 (n_frames, 128, 128, 3) RGB frames (module docstring).

    a2l, l2f: the trained networks; landmark_subset: the Tab. V(a) setting both were trained with
    (`models.zheng.landmarks.SUBSETS`); batch: frames per U-Net pass. `landmark_mask` (bool (68,)) tells
    evaluation which predicted points mean something.
    """

    crop = FACE

    def __init__(self, a2l: A2L, l2f: UNetGenerator, landmark_subset: str = "all", batch: int = 32):
        if l2f.cfg.image_size != self.crop.size[0]:
            raise ValueError(f"L2F renders {l2f.cfg.image_size}-px faces, the store's face crop is {self.crop.size}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.a2l, self.l2f, self.subset, self.batch = a2l, l2f, landmark_subset, batch
        self.landmark_mask = subset_mask(landmark_subset)

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> "ZhengGenerator":
        """From a zheng model directory (`a2l.pt`, `l2f.pt`; `tasks.model_dir`), on `device`. Raises ValueError
        when its two networks were trained with different landmark subsets, else as `models.weights.read_weights`."""
        a2l, subset = load_a2l(Path(model_dir) / "a2l.pt", device)
        l2f, l2f_subset = load_l2f(Path(model_dir) / "l2f.pt", device)
        if subset != l2f_subset:
            raise ValueError(f"{model_dir}: A2L was trained on landmark subset {subset}, L2F on {l2f_subset}")
        return cls(a2l, l2f, subset)

    def audio_features(self, audio: np.ndarray) -> np.ndarray:
        """What A2L reads, computed on the CPU: the MFCC float32 (A, 13) at 100 Hz (`storage.audio.mfcc`, ATVGnet's
        input; A = 1 + ceil((S - 400) / 160)) of speech int16 (S,) at 16 kHz; `mfcc_landmarks` cuts its 28 x 12
        windows. Raises ValueError for an empty recording."""
        return storage_audio.mfcc(np.asarray(audio))

    def predict_landmarks(self, still_landmarks: np.ndarray, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """A2L's landmarks float32 (n_frames, 68, 2) in crop pixels (`predict_landmarks`) of speech int16 (S,) at
        16 kHz; points outside the subset are not predicted: ignore them (`landmark_mask`). Raises ValueError when
        n_frames < 1."""
        return mfcc_landmarks(self.a2l, still_landmarks, self.audio_features(audio), n_frames, self.subset,
                              self.crop.size[0])

    def render(self, still: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """L2F frames uint8 (n, H, W, 3) of the still face uint8 (H, W, 3) at landmarks float (n, 68, 2) in crop
        pixels. Raises ValueError on other shapes."""
        H, W = self.crop.size
        still, landmarks = np.asarray(still), np.asarray(landmarks, np.float32)
        if still.shape != (H, W, 3) or still.dtype != np.uint8:
            raise ValueError(f"still must be uint8 ({H}, {W}, 3), got {still.dtype} {still.shape}")
        if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2) or len(landmarks) == 0:
            raise ValueError(f"landmarks must be (n >= 1, 68, 2), got {landmarks.shape}")
        g = self.l2f
        dev = next(g.parameters()).device
        face = torch.from_numpy(still).to(dev).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]  # (1, 3, H, W)
        keep = torch.from_numpy(self.landmark_mask).to(dev)
        out = np.empty((len(landmarks), H, W, 3), np.uint8)
        with eval_mode(g), torch.inference_mode():
            for start in range(0, len(landmarks), self.batch):
                points = torch.from_numpy(landmarks[start : start + self.batch]).to(dev)  # (b, 68, 2)
                heat = landmark_heatmaps(points, H, g.cfg.sigma, keep)  # (b, 68, H, W)
                frames = g(face.expand(len(points), -1, -1, -1), heat)  # (b, 3, H, W)
                pixels = frames.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
                out[start : start + len(points)] = pixels.permute(0, 2, 3, 1).cpu().numpy()
        return out

    def __call__(self, still: np.ndarray, still_landmarks: np.ndarray, audio: np.ndarray,
                 n_frames: int) -> np.ndarray:
        return self.render(still, self.predict_landmarks(still_landmarks, audio, n_frames))
