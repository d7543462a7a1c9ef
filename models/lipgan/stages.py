"""The lip GAN's training stages, in the order `talkface train --system lipgan` runs them (Chen et al. ECCV 2018;
`../shared/specs/chen2018-lipgan.md`):

1. `flownet`: the motion network F, trained on OpenCV Farneback flow of the store's own train-split mouth crops
   (spec §4, option 1: the paper's FlowNetS weights are not reachable; the authors fine-tuned theirs on GRID flow,
   `flownet/ft_grid_flow.py`, with an L1 end-point error). Loss: the mean end-point error (Euclidean distance of
   the predicted and target flow vectors) at quarter resolution [D: one scale, the net has one output].
2. `perceptual`: the mouth autoencoder whose encoder φ gives the perceptual loss (spec §5, P Eq. 3), trained on
   single train-split mouth frames with MSE, Adam 2e-4 β (0.5, 0.999).
3. `lipgan`: the GAN (spec §6): the generator, the three-stream (or two-stream) discriminator and the correlation
   encoders φ_s, φ_v, with the flow net and the autoencoder's encoder frozen (eval mode, no gradient; `Stage.uses`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from models.config import TrainConfig
from models.lipgan.correlation import AudioDerivativeEncoder, CorrelationConfig, MotionEncoder
from models.lipgan.data import LipGANDataset, MouthFlowDataset, MouthFrameDataset, mel_statistics
from models.lipgan.discriminator import DiscriminatorConfig, ThreeStreamDiscriminator, TwoStreamDiscriminator
from models.lipgan.flow import FlowNetConfig, MouthFlowNet, frame_differences
from models.lipgan.generator import GeneratorConfig, LipGANGenerator
from models.lipgan.losses import LipGANLossConfig, corr_loss, discriminator_loss, generator_loss
from models.lipgan.perceptual import MouthAutoencoder, PerceptualConfig
from models.system import Stage, StepOutput, set_requires_grad, to_uint8_rows


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
    reads = ("mouth",)  # no inference_modules: only the GAN's training uses F
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
    reads = ("mouth",)  # no inference_modules: only the GAN's training uses the autoencoder
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


MOTIONS = ("flow_distilled", "farneback", "frame_difference")


@dataclass(frozen=True)
class LipGANTrainConfig(TrainConfig):
    """The GAN: generator, audio-visual discriminator and correlation encoders (spec §6; the loop's fields:
    `models.config.TrainConfig`). Each step is one discriminator update on the detached generated clip, then one
    update of the generator and φ_s, φ_v through the frozen discriminator.

    lr, beta1, beta2: Adam of the generator and the discriminator (2e-4, 0.5, 0.999).
    lr_corr, beta1_corr, weight_decay_corr: Adam of φ_s and φ_v (1e-4, 0.9, 5e-4).
    T: frames per sample (16). stride: frames between window starts (8).
    cache_clips: clips whose mouths and log-mels each data process keeps.
    d_streams: "three" (video, motion, audio: the full model) or "two" (video, audio: Tab. 2 g, h).
    motion: the motion input of D's third stream and φ_v: "flow_distilled" (the flow net F of stage flownet, frozen,
        on real and generated clips), "farneback" (OpenCV flow of the real clip, F on the generated one: the
        spec's option 2) or "frame_difference" (signed frame differences, Tab. 2 i; no flow net).
    generator, discriminator, correlation: the networks' sizes; the discriminator's and φ_v's motion input
        (channels, side) and the layers φ_v needs are derived from `motion` (`motion_configs`).
    loss: loss weights and the Tab. 2 switches (`LipGANLossConfig`).
    Presets: "paper" (64×64 mouths, 16 frames, 128 mels, batch 24) and "small" (32×32, 8 frames, 32 mels, batch 4).
    """

    steps: int = 20000
    batch_size: int = 24
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_corr: float = 1e-4
    beta1_corr: float = 0.9
    weight_decay_corr: float = 5e-4
    T: int = 16
    stride: int = 8
    cache_clips: int = 64
    d_streams: Literal["three", "two"] = "three"
    motion: Literal["flow_distilled", "farneback", "frame_difference"] = "flow_distilled"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    loss: LipGANLossConfig = field(default_factory=LipGANLossConfig)

    def __post_init__(self):
        super().__post_init__()
        if self.d_streams not in ("three", "two") or self.motion not in MOTIONS:
            raise ValueError(f"d_streams must be three or two and motion one of {', '.join(MOTIONS)}, got "
                             f"{self.d_streams!r}, {self.motion!r}")
        S, n_mels = self.generator.image_size, self.generator.n_mels
        if (self.discriminator.image_size, self.discriminator.frames, self.discriminator.n_mels) != (S, self.T, n_mels):
            raise ValueError(f"the discriminator's image_size, frames, n_mels {self.discriminator.image_size}, "
                             f"{self.discriminator.frames}, {self.discriminator.n_mels} must be the generator's "
                             f"{S}, T {self.T}, {n_mels}")
        audio = (self.generator.audio_channels[-1], S // 4)
        if (self.correlation.audio_channels, self.correlation.audio_freq) != audio:
            raise ValueError("the correlation config's audio_channels and audio_freq must be the generator's last "
                             f"audio width and image_size / 4: {self.generator.audio_channels[-1]}, {S // 4}")

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls(),
                "small": cls(steps=300, batch_size=4, T=8, checkpoint_every=100, sample_every=100,
                             generator=GeneratorConfig.preset("small"),
                             discriminator=DiscriminatorConfig.preset("small"),
                             correlation=CorrelationConfig.preset("small"))}


def motion_configs(cfg: LipGANTrainConfig) -> tuple[DiscriminatorConfig, CorrelationConfig]:
    """The discriminator's and φ_v's configs for `cfg.motion`: flow is (2, S/4, S/4) per step, frame differences
    (3, S, S); φ_v gets as many stride-2 layers as its input side needs (the last width repeated), with
    `non_derivative` from the loss's `corr` switch."""
    S = cfg.generator.image_size
    channels, side = (3, S) if cfg.motion == "frame_difference" else (2, S // 4)
    widths = cfg.correlation.motion_widths
    widths = widths + (widths[-1],) * max(0, (side - 1).bit_length() - len(widths))
    disc = replace(cfg.discriminator, motion_channels=channels, motion_size=side)
    corr = replace(cfg.correlation, motion_channels=channels, motion_size=side, motion_widths=widths,
                   non_derivative=cfg.loss.corr == "non_derivative")
    return disc, corr


def per_frame(net, clip: torch.Tensor) -> torch.Tensor:
    """A 2-D network on every frame of clips (B, 3, T, S, S): net((B·T, 3, S, S)) -> its output (B·T, …)."""
    B, C, T, H, W = clip.shape
    return net(clip.transpose(1, 2).reshape(B * T, C, H, W))


class LipGANStage(Stage):
    """The lip GAN (module docstring of `models.lipgan.losses`; spec §6), using the frozen flow net of stage
    `flownet` and the frozen autoencoder of stage `perceptual`."""

    name = "lipgan"
    Config = LipGANTrainConfig
    reads = ("mouth", "audio")
    inference_modules = ("generator",)
    resume_may_differ = frozenset({"cache_clips"})

    def uses(self, cfg: LipGANTrainConfig) -> dict:
        out = {}
        if cfg.motion != "frame_difference":
            out["flownet"] = (FlowNetStage(), "flownet")
        if cfg.loss.use_perceptual:
            out["autoencoder"] = (PerceptualStage(), "autoencoder")
        return out

    def modules(self, cfg: LipGANTrainConfig) -> dict:
        disc, corr = motion_configs(cfg)
        out = {"generator": LipGANGenerator(cfg.generator)}
        if cfg.loss.use_gan:
            out["discriminator"] = (ThreeStreamDiscriminator(disc) if cfg.d_streams == "three"
                                    else TwoStreamDiscriminator(disc))
        if cfg.loss.corr != "none":
            out["phi_s"], out["phi_v"] = AudioDerivativeEncoder(corr), MotionEncoder(corr)
        return out

    def optimizers(self, cfg: LipGANTrainConfig, modules: dict) -> dict:
        gan = {name: torch.optim.Adam(modules[name].parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
               for name in ("generator", "discriminator") if name in modules}
        corr = {name: torch.optim.Adam(modules[name].parameters(), lr=cfg.lr_corr, betas=(cfg.beta1_corr, 0.999),
                                       weight_decay=cfg.weight_decay_corr)
                for name in ("phi_s", "phi_v") if name in modules}
        return {**gan, **corr}

    def dataset(self, store_dir: Path, split: str, cfg: LipGANTrainConfig, state: dict | None = None
                ) -> LipGANDataset:
        n_mels = cfg.generator.n_mels
        stats = ({k: v.numpy() for k, v in state["mel_stats"].items()} if state
                 else mel_statistics(store_dir, "train", n_mels))
        return LipGANDataset(store_dir, split, stats=stats, T=cfg.T, stride=cfg.stride,
                             image_size=cfg.generator.image_size, n_mels=n_mels, seed=cfg.seed,
                             cache_clips=cfg.cache_clips, with_flow=cfg.motion == "farneback")

    def extra_state(self, dataset: LipGANDataset) -> dict:
        """The train split's log-mel statistics, which inference normalises with."""
        return {"mel_stats": {k: torch.from_numpy(v.copy()) for k, v in dataset.stats.items()}}

    def motion(self, modules: dict, cfg: LipGANTrainConfig, clip: torch.Tensor) -> torch.Tensor:
        """The motion input of a clip (B, 3, T, S, S): F(clip) (B, 2, T-1, S/4, S/4), or its frame differences."""
        if cfg.motion == "frame_difference":
            return frame_differences(clip)
        return modules["flownet"](clip).float()

    def step(self, modules, optimizers, batch, cfg: LipGANTrainConfig, fabric) -> StepOutput:
        """batch: "video" (B, 3, T, S, S), "identity" (B, 3, S, S), "audio" and "mismatch_audio" (B, 1, 4T, n_mels)
        [, "flow" (B, 2, T-1, S/4, S/4) for motion "farneback"]. Losses "g/<term>", "d/<term>" ("total": the
        optimised sums); outputs "fake" (B, 3, T, S, S) in [-1, 1]. One generator forward serves both updates (the
        authors run a second, identical one after the D update)."""
        loss_cfg = cfg.loss
        real, audio = batch["video"], batch["audio"]
        fake, f_s = modules["generator"](batch["identity"], audio)  # (B, 3, T, S, S), (B, C_a, T, F)
        fake, f_s = fake.float(), f_s.float()
        with torch.no_grad():
            real_motion = batch["flow"] if cfg.motion == "farneback" else self.motion(modules, cfg, real)
        # the generated clip's motion through the frozen F, once: detached for D, with its gradient for G
        fake_motion = self.motion(modules, cfg, fake) if loss_cfg.use_gan or (
            loss_cfg.corr != "none" and loss_cfg.fake_corr) else None
        losses: dict[str, torch.Tensor] = {}

        def score(d, video, motion, sound):
            return (d(video, motion, sound) if cfg.d_streams == "three" else d(video, sound)).float()

        if loss_cfg.use_gan:  # 1. discriminator on real, generated (detached) and mismatched pairs
            d = modules["discriminator"]
            set_requires_grad(d, True)
            d_losses = discriminator_loss(
                score(d, real, real_motion, audio), score(d, fake.detach(), fake_motion.detach(), audio),
                score(d, real, real_motion, batch["mismatch_audio"]) if loss_cfg.mismatch_negatives else None,
                loss_cfg)
            optimizers["discriminator"].zero_grad(set_to_none=True)
            fabric.backward(d_losses["total"])
            optimizers["discriminator"].step()
            set_requires_grad(d, False)
            losses.update({f"d/{k}": v.detach() for k, v in d_losses.items()})

        # 2. generator (and φ_s, φ_v) through the frozen networks; D unwrapped: no DDP reduction for it
        fake_logit = corr = perceptual_fake = perceptual_real = None
        with fabric.autocast():
            if loss_cfg.use_gan:
                fake_logit = score(modules["discriminator"].module, fake, fake_motion, audio)
            if loss_cfg.corr != "none":
                a = modules["phi_s"](f_s).float()
                b_real = modules["phi_v"](real_motion).float()
                b_fake = modules["phi_v"](fake_motion).float() if loss_cfg.fake_corr else None
                corr = corr_loss(a, b_real, b_fake, loss_cfg)
            if loss_cfg.use_perceptual:
                encode = modules["autoencoder"].encode
                perceptual_fake = per_frame(encode, fake).float()
                with torch.no_grad():
                    perceptual_real = per_frame(encode, real).float()
        g_losses = generator_loss(fake, real, fake_logit=fake_logit, corr=corr, perceptual_fake=perceptual_fake,
                                  perceptual_real=perceptual_real, cfg=loss_cfg)
        trained = [n for n in ("generator", "phi_s", "phi_v") if n in optimizers]
        for name in trained:
            optimizers[name].zero_grad(set_to_none=True)
        fabric.backward(g_losses["total"])
        for name in trained:
            optimizers[name].step()
        if loss_cfg.use_gan:
            set_requires_grad(modules["discriminator"], True)
        losses.update({f"g/{k}": v.detach() for k, v in g_losses.items()})
        return StepOutput(losses, {"fake": fake.detach()})

    def samples(self, batch, out: StepOutput) -> dict[str, np.ndarray]:
        """"mouths": the first sample's generated frames over its real ones."""
        return {"mouths": to_uint8_rows(out.outputs["fake"][0].transpose(0, 1), batch["video"][0].transpose(0, 1))}
