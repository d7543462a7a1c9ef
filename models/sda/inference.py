"""The Vougioukas et al. 2019 generator for inference (IJCV; shared/specs/vougioukas2019-sda.md §1–2): a still
128×96 `face_sda` crop and 16 kHz speech -> uint8 face frames saying it, of any length. What `evaluate`, `generate`
and the benchmark see of a trained model (`SDATalker`, the `models.system` Generator).

1. The whole recording's 0.2 s windows, one per video frame, centred on it (`generator.audio_windows`), as the
   authors' `sda.VideoAnimator` cuts them, from the waveform at the model's rate (`SDATalker.audio_features`).
2. One pass of the generator over the whole sequence (eval mode: the BatchNorm running statistics): the content
   and noise GRUs are recurrent, so any number of frames is one sequence, as in the authors' code; the frame
   decoder runs `batch` frames at a time, so memory stays bounded for long recordings.
3. The noise: N(0, noise_std²) per frame from a `torch.Generator` seeded with `seed`, so the same inputs give the
   same video; another seed gives another (equally valid) head motion and blinking.

`tasks.generate` pastes the crops back into the user's photo by default (`talkface generate --system sda`), or
writes the 128×96 crop itself (`--crop-only`). Pure torch and numpy (no Prefect, MLflow or dlib).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.sda.generator import SDAGenerator, SDAGeneratorConfig, frame_windows, waveform
from models.weights import load_module, read_weights
from storage.crops import FACE_SDA

SYSTEM, STAGE = "sda", "sda"


def load_generator(path: Path, device: str | torch.device = "cpu") -> SDAGenerator:
    """The generator in eval mode on `device` from an sda checkpoint or model-directory file. Raises as
    `models.weights.read_weights`."""
    state = read_weights(path, SYSTEM, STAGE)
    generator = SDAGenerator(SDAGeneratorConfig.from_dict(state["config"]["generator"]))
    load_module(generator, state["modules"]["generator"], path, "generator")
    return generator.to(device).eval()


class SDATalker:
    """still uint8 (128, 96, 3) `face_sda` crop + audio int16 (S,) at 16 kHz -> uint8 (n_frames, 128, 96, 3) RGB
    faces (module docstring). The landmarks argument of the Generator protocol is unused: the model sees only the
    image.

    generator: a trained `SDAGenerator`; seed: of the per-frame noise; batch: frames per decoder pass.
    """

    crop = FACE_SDA

    def __init__(self, generator: SDAGenerator, seed: int = 0, batch: int = 64):
        if tuple(generator.cfg.image_size) != tuple(self.crop.size):
            raise ValueError(f"the generator renders {generator.cfg.image_size}, the store's {self.crop.field} is "
                             f"{self.crop.size}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.generator, self.seed, self.batch = generator, seed, batch

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> "SDATalker":
        """From an sda model directory (`sda.pt`; `tasks.model_dir`), on `device`; the authors' released generator
        (`talkface import-weights`: extra["protocol"] "authors") comes back as `authors_protocol.AuthorsSDATalker`.
        Raises as `load_generator`."""
        path = Path(model_dir) / f"{STAGE}.pt"
        if read_weights(path, SYSTEM, STAGE)["extra"].get("protocol") == "authors":
            from models.sda.authors_protocol import AuthorsSDATalker

            return AuthorsSDATalker.load(model_dir, device)
        return cls(load_generator(path, device))

    def audio_features(self, audio: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """What the generator's 0.2 s windows are cut from (`models.sda.generator.waveform`), on the CPU: speech
        int16 (S,) at 16 kHz -> float32 (S',) in [-1, 1] at the generator's `audio_rate` (S' = S at 16 kHz; FFT-
        resampled otherwise, e.g. 50 kHz for the authors' GRID model). n_frames: only the first 640 · n_frames
        samples, cut before resampling (what `__call__` renders from); None: the whole recording."""
        return waveform(audio, self.generator.cfg.audio_rate, n_frames)

    def noise(self, n_frames: int) -> torch.Tensor:
        """float32 (1, n_frames, noise_size): the seeded per-frame noise, N(0, noise_std²)."""
        cfg = self.generator.cfg
        rng = torch.Generator().manual_seed(self.seed)
        return torch.randn(1, n_frames, cfg.noise_size, generator=rng) * cfg.noise_std

    def __call__(self, still: np.ndarray, still_landmarks: np.ndarray | None, audio: np.ndarray,
                 n_frames: int) -> np.ndarray:
        still = np.asarray(still)
        H, W = self.crop.size
        if still.shape != (H, W, 3) or still.dtype != np.uint8:
            raise ValueError(f"still must be uint8 ({H}, {W}, 3), got {still.dtype} {still.shape}")
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        g = self.generator
        dev = next(g.parameters()).device
        identity = torch.from_numpy(still).to(dev).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]  # (1,3,H,W)
        windows = frame_windows(self.audio_features(audio, n_frames), n_frames, g.cfg.audio_rate)  # (n, win)
        sound = torch.from_numpy(windows).to(dev)[None]  # (1, n, win)
        training = g.training
        g.eval()
        try:
            with torch.inference_mode():
                frames = self._render(identity, sound, self.noise(n_frames).to(dev))  # (n, 3, H, W)
        finally:
            g.train(training)
        pixels = frames.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).cpu().numpy()  # (n, H, W, 3)

    def _render(self, identity: torch.Tensor, sound: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """`SDAGenerator.forward` with the decoder run `batch` frames at a time: identity (1, 3, H, W), sound
        (1, n, 3200), noise (1, n, noise_size) -> frames (n, 3, H, W)."""
        latent, skips = self.generator.latents(identity, sound, noise=noise)  # (1, n, latent), maps (1, C, h, w)
        return torch.cat([self.generator.decode(z, skips) for z in latent[0].split(self.batch)])
