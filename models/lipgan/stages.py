"""The lip GAN's training stages, in the order `talkface train --system lipgan` runs them (Chen et al. ECCV 2018;
`../shared/specs/chen2018-lipgan.md`):

1. `flownet`: the motion network F, trained on OpenCV Farneback flow of the store's own train-split mouth crops
   (spec §4, option 1: the paper's FlowNetS weights are not reachable; the authors fine-tuned theirs on GRID flow,
   `flownet/ft_grid_flow.py`, with an L1 end-point error). Loss: the mean end-point error (Euclidean distance of
   the predicted and target flow vectors) at quarter resolution [D: one scale, the net has one output].
2. `perceptual`: the mouth autoencoder whose encoder φ gives the perceptual loss (spec §5, P Eq. 3), trained on
   single train-split mouth frames with MSE, Adam 2e-4 β (0.5, 0.999).
Both are frozen (eval mode, no gradient) while the GAN trains.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.config import TrainConfig
from models.lipgan.data import MouthFlowDataset, MouthFrameDataset
from models.lipgan.flow import FlowNetConfig, MouthFlowNet
from models.lipgan.perceptual import MouthAutoencoder, PerceptualConfig
from models.system import Stage, StepOutput


def to_uint8_rows(*rows: torch.Tensor) -> np.ndarray:
    """Frames float (N, 3, H, W) in [-1, 1], one tensor per row -> one uint8 (rows·H, N·W, 3) RGB image."""
    images = [((r.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8) for r in rows]
    grid = torch.cat([torch.cat(list(img), dim=2) for img in images], dim=1)  # (3, rows·H, N·W)
    return grid.permute(1, 2, 0).cpu().numpy()


def end_point_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance of flow vectors: pred, target float (B, 2, ...) -> 0-dim tensor (pixels)."""
    return torch.linalg.vector_norm(pred - target, dim=1).mean()


@dataclass(frozen=True)
class FlowNetTrainConfig(TrainConfig):
    """Training of the motion network F on Farneback flow (the loop's fields: `models.config.TrainConfig`).

    lr, beta1, beta2: Adam (1e-4, 0.9, 0.999) [D].
    T: frames per sample (16, the GAN's clip length). stride: frames between window starts (8).
    cache_clips: clips whose mouths and flow each data process keeps.
    model: the network's sizes (`FlowNetConfig`); its image_size is the frames' side.
    Presets: "paper" (64×64 mouths, 2000 steps at batch 24) and "small" (32×32, narrow, 200 steps at batch 8).
    """

    steps: int = 2000
    batch_size: int = 24
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    T: int = 16
    stride: int = 8
    cache_clips: int = 64
    model: FlowNetConfig = field(default_factory=FlowNetConfig)

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls(model=FlowNetConfig.preset("paper")),
                "small": cls(steps=200, batch_size=8, T=8, checkpoint_every=100, sample_every=100,
                             model=FlowNetConfig.preset("small"))}


class FlowNetStage(Stage):
    """F on the store's Farneback flow (module docstring)."""

    name = "flownet"
    Config = FlowNetTrainConfig
    reads = ("mouth",)
    inference_modules = ("flownet",)
    resume_may_differ = frozenset({"cache_clips"})

    def modules(self, cfg: FlowNetTrainConfig) -> dict:
        return {"flownet": MouthFlowNet(cfg.model)}

    def optimizers(self, cfg: FlowNetTrainConfig, modules: dict) -> dict:
        return {"flownet": torch.optim.Adam(modules["flownet"].parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def dataset(self, store_dir: Path, split: str, cfg: FlowNetTrainConfig, state: dict | None = None
                ) -> MouthFlowDataset:
        return MouthFlowDataset(store_dir, split, T=cfg.T, stride=cfg.stride, image_size=cfg.model.image_size,
                                seed=cfg.seed, cache_clips=cfg.cache_clips)

    def step(self, modules, optimizers, batch, cfg, fabric) -> StepOutput:
        """batch: "video" (B, 3, T, S, S), "flow" (B, 2, T-1, S/4, S/4). Logs "epe" (quarter-grid pixels) and
        "epe_zero", the error of predicting no motion (what the net must beat)."""
        pred = modules["flownet"](batch["video"]).float()  # (B, 2, T-1, S/4, S/4)
        loss = end_point_error(pred, batch["flow"])
        optimizer = optimizers["flownet"]
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        zero = torch.linalg.vector_norm(batch["flow"], dim=1).mean()
        return StepOutput({"epe": loss.detach(), "epe_zero": zero.detach()})


@dataclass(frozen=True)
class PerceptualTrainConfig(TrainConfig):
    """Training of the perceptual mouth autoencoder (spec §5; the loop's fields: `models.config.TrainConfig`).

    lr, beta1, beta2: Adam (2e-4, 0.5, 0.999, as the authors' `embedding.py`).
    cache_clips: clips whose mouths each data process keeps.
    model: the autoencoder's sizes (`PerceptualConfig`); its image_size is the frames' side.
    Presets: "paper" (64×64 mouths, 3000 steps at batch 24 frames) and "small" (32×32, narrow, 200 steps at batch
    16). The authors train 7 epochs of 24 clips; we count single frames [D].
    """

    steps: int = 3000
    batch_size: int = 24
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    cache_clips: int = 64
    model: PerceptualConfig = field(default_factory=PerceptualConfig)

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls(model=PerceptualConfig.preset("paper")),
                "small": cls(steps=200, batch_size=16, checkpoint_every=100, sample_every=100,
                             model=PerceptualConfig.preset("small"))}


class PerceptualStage(Stage):
    """The mouth autoencoder (module docstring); the GAN uses its encoder, frozen."""

    name = "perceptual"
    Config = PerceptualTrainConfig
    reads = ("mouth",)
    inference_modules = ("autoencoder",)
    resume_may_differ = frozenset({"cache_clips"})

    def modules(self, cfg: PerceptualTrainConfig) -> dict:
        return {"autoencoder": MouthAutoencoder(cfg.model)}

    def optimizers(self, cfg: PerceptualTrainConfig, modules: dict) -> dict:
        net = modules["autoencoder"]
        return {"autoencoder": torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def dataset(self, store_dir: Path, split: str, cfg: PerceptualTrainConfig, state: dict | None = None
                ) -> MouthFrameDataset:
        return MouthFrameDataset(store_dir, split, image_size=cfg.model.image_size, seed=cfg.seed,
                                 cache_clips=cfg.cache_clips)

    def step(self, modules, optimizers, batch, cfg, fabric) -> StepOutput:
        """batch: "mouth" (B, 3, S, S) in [-1, 1]. Logs "mse"; outputs "reconstruction" (B, 3, S, S)."""
        mouth = batch["mouth"]
        reconstruction = modules["autoencoder"](mouth).float()
        loss = F.mse_loss(reconstruction, mouth)
        optimizer = optimizers["autoencoder"]
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        return StepOutput({"mse": loss.detach()}, {"reconstruction": reconstruction.detach()})

    def samples(self, batch, out: StepOutput) -> dict[str, np.ndarray]:
        """"reconstruction": up to 8 reconstructed mouths over the real ones."""
        return {"reconstruction": to_uint8_rows(out.outputs["reconstruction"][:8], batch["mouth"][:8])}
