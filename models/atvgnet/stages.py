"""ATVGnet's two training stages (Chen, Maddox, Duan, Xu, CVPR 2019; public code lelechen63/ATVGnet), trained one
after the other by `tasks.training.train_stage`: the paper's decoupled training.

atnet (Sec. 3.1, `code/atnet.py`): AT-net maps MFCC windows and the example frame's landmark PCA coefficients to the
PCA coefficients of T = 16 frames; MSE against the ground truth (B, 16, 6); Adam lr 2e-4, betas (0.5, 0.999).
Data `ATNetDataset`, projected with the store's `pca.npz`; the basis travels in the checkpoint (`extra_state`), so
evaluation and generation need no store and a resumed run keeps its basis.

vgnet (Sec. 3.2-3.4, `code/vgnet.py`): VG-net learns to render ground-truth landmarks (`VGNetDataset`), AT-net's are
used only at inference. Each step alternates two Adam updates (lr 2e-4, betas (0.5, 0.999)) on one batch:

    fake, attention = G(example_face, landmarks, example_landmarks)           one generator forward per step
    1. discriminator: D(real), D(fake.detach()) -> `discriminator_loss` -> Adam step on D
    2. generator:     D(fake) with D's parameters frozen -> `generator_loss` (GAN + 10 x dynamic pixel-wise L1
                      weighted by detached attention + 0.5 + landmark regression, as `models.atvgnet.losses`
                      defines, with its ablation switches) -> Adam step on G

Under `bf16-mixed` the forwards run in bfloat16 and the losses in float32 (Fabric returns float32 outputs). In the
generator update the frozen discriminator is called unwrapped (not through DDP): only the generator's gradients
need reducing there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.atvgnet.at_net import ATNet, ATNetConfig
from models.atvgnet.data import ATNetDataset, VGNetDataset
from models.atvgnet.discriminator import DiscriminatorConfig, RegressionDiscriminator
from models.atvgnet.losses import VGNetLossConfig, discriminator_loss, generator_loss
from models.atvgnet.samples import sample_grids
from models.atvgnet.vg_net import VGNet, VGNetConfig
from models.config import TrainConfig
from models.system import Stage, StepOutput, set_requires_grad
from storage.landmark_pca import from_dict as pca_from_dict


@dataclass(frozen=True)
class ATNetTrainConfig(TrainConfig):
    """AT-net training (the loop's fields: `models.config.TrainConfig`).

    lr, beta1, beta2: Adam (2e-4, 0.5, 0.999 as in the paper).
    T: video frames per sample (16). stride: frames between consecutive window starts within a clip.
    model: AT-net sizes (`ATNetConfig`).
    Presets: "paper" (the published sizes), "small" (narrow layers for CPU demos); both 300 steps at batch 16.
    """

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    T: int = 16
    stride: int = 1
    model: ATNetConfig = field(default_factory=ATNetConfig)

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls(model=ATNetConfig.preset("paper")), "small": cls(model=ATNetConfig.preset("small"))}


@dataclass(frozen=True)
class VGNetTrainConfig(TrainConfig):
    """VG-net and regression discriminator training (the loop's fields: `models.config.TrainConfig`); each step is
    one discriminator and one generator update.

    lr, beta1, beta2: Adam for both networks (2e-4, 0.5, 0.999 as in the paper).
    T: video frames per sample (16). stride: frames between consecutive window starts within a clip.
    cache_clips: clips whose faces each data process keeps in memory (`VGNetDataset`, LRU).
    generator: VG-net sizes and its ablation switches use_dma, use_mmcrnn (`VGNetConfig`).
    discriminator: regression discriminator sizes (`DiscriminatorConfig`).
    loss: loss weights and the ablation switches use_dal, use_rd (`VGNetLossConfig`).
    Presets: "paper" (the published sizes), "small" (narrow networks for CPU); both 300 steps at batch 4.
    """

    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    T: int = 16
    stride: int = 1
    cache_clips: int = 16
    generator: VGNetConfig = field(default_factory=VGNetConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: VGNetLossConfig = field(default_factory=VGNetLossConfig)

    @classmethod
    def presets(cls) -> dict:
        return {name: cls(generator=VGNetConfig.preset(name), discriminator=DiscriminatorConfig.preset(name))
                for name in ("paper", "small")}


def pca_to_dict(pca) -> dict:
    """A LandmarkPCA as tensors and an int (weights-only loadable); `storage.landmark_pca.from_dict` reads it."""
    return {"mean": torch.from_numpy(pca.mean.copy()), "components": torch.from_numpy(pca.components.copy()),
            "explained_variance": torch.from_numpy(pca.explained_variance.copy()), "crop_size": int(pca.crop_size)}


class ATNetStage(Stage):
    """AT-net: MFCC windows + example landmarks -> landmark PCA coefficients (module docstring)."""

    name = "atnet"
    Config = ATNetTrainConfig
    reads = ("landmarks", "mfcc")
    inference_modules = ("atnet",)

    def modules(self, cfg: ATNetTrainConfig) -> dict:
        return {"atnet": ATNet(cfg.model)}

    def optimizers(self, cfg: ATNetTrainConfig, modules: dict) -> dict:
        return {"atnet": torch.optim.Adam(modules["atnet"].parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def dataset(self, store_dir: Path, split: str, cfg: ATNetTrainConfig, state: dict | None = None) -> ATNetDataset:
        pca = pca_from_dict(state["pca"]) if state else None
        return ATNetDataset(store_dir, split, pca=pca, T=cfg.T, stride=cfg.stride, seed=cfg.seed)

    def extra_state(self, dataset: ATNetDataset) -> dict:
        return {"pca": pca_to_dict(dataset.pca)}

    def step(self, modules, optimizers, batch, cfg, fabric) -> StepOutput:
        pred = modules["atnet"](batch["example_landmarks"], batch["mfcc"])  # (B, T, 6)
        loss = F.mse_loss(pred, batch["landmarks"])
        optimizer = optimizers["atnet"]
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        return StepOutput({"loss": loss.detach()})


class VGNetStage(Stage):
    """VG-net and its regression discriminator on ground-truth landmarks (module docstring)."""

    name = "vgnet"
    Config = VGNetTrainConfig
    reads = ("face", "landmarks")
    inference_modules = ("generator",)
    resume_may_differ = frozenset({"cache_clips"})

    def modules(self, cfg: VGNetTrainConfig) -> dict:
        return {"generator": VGNet(cfg.generator), "discriminator": RegressionDiscriminator(cfg.discriminator)}

    def optimizers(self, cfg: VGNetTrainConfig, modules: dict) -> dict:
        betas = (cfg.beta1, cfg.beta2)
        return {name: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=betas) for name, m in modules.items()}

    def dataset(self, store_dir: Path, split: str, cfg: VGNetTrainConfig, state: dict | None = None) -> VGNetDataset:
        return VGNetDataset(store_dir, split, T=cfg.T, stride=cfg.stride, seed=cfg.seed, cache_clips=cfg.cache_clips)

    def step(self, modules, optimizers, batch, cfg: VGNetTrainConfig, fabric) -> StepOutput:
        """batch: "example_face" (B, 3, H, W), "example_landmarks" (B, 136), "landmarks" (B, T, 136), "frames"
        (B, T, 3, H, W), float32. Losses "g/<term>" and "d/<term>" ("total" the optimised sums); outputs "fake"
        (B, T, 3, H, W) in [-1, 1] and "attention" (B, T, 1, H, W) in [0, 1]."""
        generator, discriminator = modules["generator"], modules["discriminator"]
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        real, landmarks = batch["frames"], batch["landmarks"]
        example_face, example_landmarks = batch["example_face"], batch["example_landmarks"]
        fake, attention = generator(example_face, landmarks, example_landmarks)  # (B, T, 3, H, W), (B, T, 1, H, W)
        fake, attention = fake.float(), attention.float()

        # 1. discriminator update on real and (detached) generated clips
        set_requires_grad(discriminator, True)
        real_score, real_landmarks = discriminator(real, example_landmarks)  # (B,), (B, T, 136)
        fake_score, fake_landmarks = discriminator(fake.detach(), example_landmarks)
        d_losses = discriminator_loss(real_score.float(), fake_score.float(), real_landmarks.float(),
                                      fake_landmarks.float(), landmarks, cfg.loss)
        opt_d.zero_grad(set_to_none=True)
        fabric.backward(d_losses["total"])
        opt_d.step()

        # 2. generator update through the (frozen, just updated) discriminator, unwrapped: no DDP reduction for it
        set_requires_grad(discriminator, False)
        with fabric.autocast():
            fake_score_g, fake_landmarks_g = discriminator.module(fake, example_landmarks)
        g_losses = generator_loss(fake, real, attention, fake_score_g.float(), fake_landmarks_g.float(), landmarks,
                                  cfg.loss)
        opt_g.zero_grad(set_to_none=True)
        fabric.backward(g_losses["total"])
        opt_g.step()
        set_requires_grad(discriminator, True)

        losses = {f"g/{k}": v.detach() for k, v in g_losses.items()}
        losses.update({f"d/{k}": v.detach() for k, v in d_losses.items()})
        return StepOutput(losses, {"fake": fake.detach(), "attention": attention.detach()})

    def samples(self, batch, out: StepOutput) -> dict[str, np.ndarray]:
        """"frames": generated rows over real rows; "attention": the attention maps (`sample_grids`)."""
        return sample_grids(out.outputs["fake"], batch["frames"], out.outputs["attention"])
