"""ATVGnet's generator (Chen, Maddox, Duan, Xu, CVPR 2019; the steps of the authors' public `code/demo.py`): a still
aligned face crop, its landmarks and 16 kHz speech -> uint8 frames of the face saying it. What `evaluate`,
`generate` and the benchmark see of a trained ATVGnet (`ATVGnetGenerator`, the `models.system` Generator).

1. MFCC of the speech (`storage.audio.mfcc`, 100 Hz, c0 = log-energy), the store's definition.
2. `predict_landmarks`: AT-net over the whole utterance at once (the demo runs the LSTM over all frames, not in
   windows of 16), example landmarks projected on the model's PCA, output coefficients multiplied by the boost omega
   (2.2 ... 3.0 on components 1-5, `storage.landmark_pca.BOOST`) and reconstructed to crop pixels.
3. `render_frames`: VG-net in chunks of T = 16 frames (its training length), the last chunk padded by repeating the
   last landmarks; `batch` chunks go through one forward pass.
Pure torch and numpy (no Prefect, MLflow or dlib).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from models.atvgnet.at_net import ATNet
from models.atvgnet.data import mfcc_windows
from models.atvgnet.inference import load_atnet, load_vgnet
from models.system import eval_mode
from models.weights import read_weights
from storage import audio as storage_audio
from storage.crops import FACE
from storage.landmark_pca import LandmarkPCA, normalise

T_VGNET = 16  # frames per VG-net sample (training length)


class ATVGnetGenerator:
    """still uint8 (128, 128, 3) aligned face crop + its landmarks float32 (68, 2) in crop pixels + audio int16 (S,)
    at 16 kHz -> uint8 (n_frames, 128, 128, 3) RGB frames (module docstring).

    atnet, pca: AT-net and its PCA basis; vgnet: VG-net's generator; boost: the demo's omega on the PCA
    coefficients (True), False, or 6 factors; batch: VG-net chunks of 16 frames per forward pass.
    """

    crop = FACE

    def __init__(self, atnet: ATNet, pca: LandmarkPCA, vgnet: torch.nn.Module, boost: bool | Sequence[float] = True,
                 batch: int = 8):
        if pca.crop_size != getattr(getattr(vgnet, "cfg", None), "image_size", pca.crop_size):
            raise ValueError(f"AT-net landmarks are for {pca.crop_size}-px crops but VG-net renders "
                             f"{vgnet.cfg.image_size}-px faces: use models trained on the same store")
        self.atnet, self.pca, self.vgnet, self.boost, self.batch = atnet, pca, vgnet, boost, batch

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> "ATVGnetGenerator":
        """From an ATVGnet model directory (`atnet.pt`, `vgnet.pt`; `tasks.model_dir`), on `device`; the authors'
        released weights (`talkface import-weights`: extra["protocol"] "authors") come back as
        `authors_generator.AuthorsATVGnetGenerator`. Raises as `models.weights.read_weights`."""
        if read_weights(Path(model_dir) / "atnet.pt", "atvgnet", "atnet")["extra"].get("protocol") == "authors":
            from models.atvgnet.authors_generator import AuthorsATVGnetGenerator

            return AuthorsATVGnetGenerator.load(model_dir, device)
        atnet, pca, _ = load_atnet(Path(model_dir) / "atnet.pt", device)
        vgnet, _ = load_vgnet(Path(model_dir) / "vgnet.pt", device)
        return cls(atnet, pca, vgnet)

    def audio_features(self, audio: np.ndarray) -> np.ndarray:
        """What AT-net reads, computed on the CPU: the MFCC float32 (A, 13) at 100 Hz (`storage.audio.mfcc`, c0 the
        log-energy; A = 1 + ceil((S - 400) / 160)) of speech int16 (S,) at 16 kHz; `predict_landmarks` cuts its
        28 x 12 windows. Raises ValueError for an empty recording."""
        return storage_audio.mfcc(np.asarray(audio))

    def predict_landmarks(self, still_landmarks: np.ndarray, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """AT-net's landmarks float32 (n_frames, 68, 2) in crop pixels, the ones VG-net renders (with the boost):
        `predict_landmarks` on the MFCC (`audio_features`) of the speech int16 (S,) at 16 kHz."""
        mfcc = self.audio_features(audio)
        return predict_landmarks(self.atnet, self.pca, still_landmarks, mfcc, n_frames, boost=self.boost)

    def __call__(self, still: np.ndarray, still_landmarks: np.ndarray, audio: np.ndarray,
                 n_frames: int) -> np.ndarray:
        landmarks = self.predict_landmarks(still_landmarks, audio, n_frames)
        return render_frames(self.vgnet, still, still_landmarks, landmarks, batch=self.batch)


def predict_landmarks(model: ATNet, pca: LandmarkPCA, example_landmarks_px: np.ndarray, mfcc: np.ndarray,
                      n_frames: int, boost: bool | Sequence[float] = True) -> np.ndarray:
    """AT-net landmarks for every video frame of an utterance (the model runs in eval mode on its own device; its
    training flags are restored afterwards).

    model, pca: AT-net and the PCA basis it was trained in (`models.atvgnet.inference.load_atnet`).
    example_landmarks_px: float (68, 2), the still face's landmarks in crop pixels (`tasks.generate.prepare_photo`).
    mfcc: float32 (A, 13) of the whole utterance (`prepare_audio`); n_frames: video frames to predict.
    boost: True multiplies PCA components 1–5 by ω = (2.2, 2.4, 2.6, 2.8, 3.0) as the public demo does; False
    reconstructs as is; or 6 factors of your own.
    Returns float32 (n_frames, 68, 2) in crop pixels. The LSTM runs once over all n_frames MFCC windows
    (`models.atvgnet.data.mfcc_windows`, edge rows repeated at both ends).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    dev = _model_device(model)
    example = torch.from_numpy(pca.to_pca(np.asarray(example_landmarks_px, np.float32))[None]).to(dev)  # (1, 6)
    windows = torch.from_numpy(mfcc_windows(np.asarray(mfcc, np.float32), np.arange(n_frames))[None]).to(dev)
    with eval_mode(model), torch.inference_mode():
        coeffs = model(example, windows)[0].float().cpu().numpy()  # (n, 6)
    return pca.from_pca(coeffs, boost=boost)


def _flat_normalised(landmarks_px: np.ndarray, crop_size: int) -> np.ndarray:
    """(…, 68, 2) crop pixels → (…, 136) float32 in about [-1, 1], x0, y0, x1, y1, … order."""
    landmarks_px = np.asarray(landmarks_px)
    return normalise(landmarks_px, crop_size).reshape(*landmarks_px.shape[:-2], 136).astype(np.float32)


def _model_device(module: torch.nn.Module) -> torch.device:
    p = next(iter(module.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def render_frames(vgnet: torch.nn.Module, example_face: np.ndarray, example_landmarks: np.ndarray,
                  landmarks: np.ndarray, batch: int = 8) -> np.ndarray:
    """VG-net frames for a landmark sequence.

    vgnet: a VG-net (`models.atvgnet.vg_net.VGNet` or any module with its forward: example face (B, 3, H, W) in
    [-1, 1], landmarks (B, T, 136), example landmarks (B, 136) → (frames (B, T, 3, H, W) in [-1, 1], attention));
    it runs in eval mode on its own device (every submodule's training flag is restored afterwards).
    example_face: uint8 (H, W, 3) RGB aligned crop; example_landmarks: float (68, 2) crop pixels;
    landmarks: float (n, 68, 2) crop pixels. Landmarks are normalised with `landmark_pca.normalise` (crop = H).
    batch: chunks of T = 16 frames per forward pass (B); the last chunk is padded by repeating the last landmarks.
    Returns uint8 (n, H, W, 3) RGB.
    """
    example_face = np.asarray(example_face)
    landmarks = np.asarray(landmarks, np.float32)
    if example_face.ndim != 3 or example_face.shape[2] != 3 or example_face.dtype != np.uint8:
        raise ValueError(f"example_face must be uint8 (H, W, 3), got {example_face.dtype} {example_face.shape}")
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2) or len(landmarks) == 0:
        raise ValueError(f"landmarks must be (n >= 1, 68, 2), got {landmarks.shape}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    n, (h, w) = len(landmarks), example_face.shape[:2]
    T, crop = T_VGNET, h
    n_chunks = math.ceil(n / T)
    padded = np.concatenate([landmarks, np.repeat(landmarks[-1:], n_chunks * T - n, 0)])
    chunks = _flat_normalised(padded, crop).reshape(n_chunks, T, 136)
    dev = _model_device(vgnet)
    face = torch.from_numpy(example_face).to(dev).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]  # (1, 3, H, W)
    example = torch.from_numpy(_flat_normalised(example_landmarks, crop)).to(dev)[None]  # (1, 136)

    out = np.empty((n_chunks * T, h, w, 3), np.uint8)
    with eval_mode(vgnet), torch.inference_mode():
        for start in range(0, n_chunks, batch):
            lm = torch.from_numpy(chunks[start : start + batch]).to(dev)  # (b, T, 136)
            b = lm.shape[0]
            frames, _ = vgnet(face.expand(b, -1, -1, -1), lm, example.expand(b, -1))  # (b, T, 3, H, W)
            pixels = frames.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
            out[start * T : (start + b) * T] = pixels.permute(0, 1, 3, 4, 2).reshape(b * T, h, w, 3).cpu().numpy()
    return out[:n]
