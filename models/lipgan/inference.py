"""The lip GAN's generator for inference (Chen et al. ECCV 2018; `../shared/specs/chen2018-lipgan.md`): a still
64×64 mouth crop and 16 kHz speech -> uint8 mouth frames saying it. What `evaluate`, `generate` and the benchmark
see of a trained lip GAN (`LipGANTalker`, the `models.system` Generator; `tasks.generate` pastes its mouths back
into the photo's face).

1. The log-mel of the whole recording (`storage.audio.log_mel`, 100 Hz, the model's mel bands), z-scored with the
   train split's statistics the model carries (`extra.mel_stats`), as training did (`models.lipgan.data`).
2. Windows of T frames (the training length, 16 at the paper preset) chained from frame 0; the last one starts at
   n - T, overlapping the one before, so every window holds real audio and no frame is missing; where windows
   overlap the later one's frames are kept. A recording shorter than T frames is one window, its audio padded by
   repeating the last mel row (`data.mel_window`), and trimmed back to n frames.
3. `batch` windows per forward pass (eval mode, the BatchNorm running statistics), the still mouth resized (area)
   to the model's image size and each generated frame resized (bicubic) back to the crop's 64×64 when they differ
   (the "small" preset renders 32×32).
Pure torch, numpy and OpenCV (no Prefect, MLflow or dlib).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from models.lipgan.data import mel_window, normalise_mel, resize_frames
from models.lipgan.generator import GeneratorConfig, LipGANGenerator
from models.weights import load_module, read_weights
from storage import audio as storage_audio
from storage.crops import MOUTH

SYSTEM, STAGE = "lipgan", "lipgan"


def window_starts(n_frames: int, T: int) -> list[int]:
    """First frames of the T-frame windows that cover n_frames frames: 0, T, 2T, … and, when n_frames is not a
    multiple of T, a last window starting at n_frames - T (overlapping the previous one). [0] when n_frames <= T.
    Raises ValueError for n_frames < 1 or T < 1."""
    if n_frames < 1 or T < 1:
        raise ValueError(f"need n_frames >= 1 and T >= 1, got {n_frames}, {T}")
    starts = list(range(0, max(n_frames - T, 0) + 1, T))
    if starts[-1] + T < n_frames:
        starts.append(n_frames - T)
    return starts


def load_generator(path: Path, device: str | torch.device = "cpu") -> tuple[LipGANGenerator, dict, int]:
    """(the generator in eval mode on `device`, its log-mel statistics {"mean", "std": float32 (n_mels,)}, T the
    training window in frames) from a lipgan checkpoint or model-directory file. Raises as
    `models.weights.read_weights`, KeyError when the file carries no `mel_stats`."""
    state = read_weights(path, SYSTEM, STAGE)
    generator = LipGANGenerator(GeneratorConfig.from_dict(state["config"]["generator"]))
    load_module(generator, state["modules"]["generator"], path, "lip GAN generator")
    stats = {k: v.numpy().astype(np.float32) for k, v in state["extra"]["mel_stats"].items()}
    return generator.to(device).eval(), stats, int(state["config"]["T"])


class LipGANTalker:
    """still uint8 (64, 64, 3) mouth crop (the store's `mouth`) + audio int16 (S,) at 16 kHz -> uint8
    (n_frames, 64, 64, 3) RGB mouths (module docstring). The landmarks argument of the Generator protocol is unused:
    the lip GAN sees only the image.

    generator: a trained `LipGANGenerator`; mel_stats: the train split's log-mel mean and std per band; T: frames
    per window (its training length); batch: windows per forward pass.
    """

    crop = MOUTH

    def __init__(self, generator: LipGANGenerator, mel_stats: dict[str, np.ndarray], T: int = 16, batch: int = 8):
        n_mels = generator.cfg.n_mels
        if any(np.shape(mel_stats[k]) != (n_mels,) for k in ("mean", "std")):
            raise ValueError(f"mel_stats must hold mean and std of shape ({n_mels},), the generator's mel bands")
        if T < 1 or batch < 1:
            raise ValueError(f"need T >= 1 and batch >= 1, got {T}, {batch}")
        self.generator, self.mel_stats, self.T, self.batch = generator, mel_stats, T, batch

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> "LipGANTalker":
        """From a lip GAN model directory (`lipgan.pt`; `tasks.model_dir`), on `device`. Raises as
        `load_generator`."""
        generator, stats, T = load_generator(Path(model_dir) / f"{STAGE}.pt", device)
        return cls(generator, stats, T)

    def audio_features(self, audio: np.ndarray) -> np.ndarray:
        """What the generator's audio encoder reads, computed on the CPU: the log-mel (`storage.audio.log_mel`, dB,
        100 Hz, the generator's n_mels bands) of speech int16 (S,) at 16 kHz, z-scored per band with the train
        split's statistics (`mel_stats`): float32 (M, n_mels), M = 1 + S // 160; `__call__` cuts its 4T-row
        windows. Raises ValueError for an empty recording."""
        mel = storage_audio.log_mel(np.asarray(audio), n_mels=self.generator.cfg.n_mels)
        return normalise_mel(mel, self.mel_stats)

    def __call__(self, still: np.ndarray, still_landmarks: np.ndarray | None, audio: np.ndarray,
                 n_frames: int) -> np.ndarray:
        still = np.asarray(still)
        if still.ndim != 3 or still.shape[2] != 3 or still.dtype != np.uint8:
            raise ValueError(f"still must be uint8 (H, W, 3), got {still.dtype} {still.shape}")
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        S = self.generator.cfg.image_size
        mel = self.audio_features(audio)  # (M, n_mels)
        T = self.T
        starts = window_starts(n_frames, T)
        windows = np.stack([mel_window(mel, s, T) for s in starts])[:, None]  # (W, 1, 4T, n_mels)
        dev = next(self.generator.parameters()).device
        identity = torch.from_numpy(resize_frames(still[None], S)[0]).to(dev)
        identity = identity.permute(2, 0, 1).float().div(127.5).sub(1.0)[None]  # (1, 3, S, S) in [-1, 1]

        rendered = np.empty((len(starts), T, S, S, 3), np.uint8)
        training = self.generator.training
        self.generator.eval()
        try:
            with torch.inference_mode():
                for i in range(0, len(starts), self.batch):
                    sound = torch.from_numpy(windows[i : i + self.batch]).to(dev)  # (b, 1, 4T, n_mels)
                    video, _ = self.generator(identity.expand(len(sound), -1, -1, -1), sound)  # (b, 3, T, S, S)
                    pixels = video.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
                    rendered[i : i + len(sound)] = pixels.permute(0, 2, 3, 4, 1).cpu().numpy()  # (b, T, S, S, 3)
        finally:
            self.generator.train(training)
        frames = np.empty((max(n_frames, T), S, S, 3), np.uint8)
        for start, clip in zip(starts, rendered):  # later windows overwrite the overlap
            frames[start : start + T] = clip
        return upsample(frames[:n_frames], self.crop.size)


def upsample(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (n, s, s, 3) -> uint8 (n, H, W, 3) bicubic; unchanged when already (H, W)."""
    if frames.shape[1:3] == tuple(size):
        return frames
    return np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for f in frames])
