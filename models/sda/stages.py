"""The Vougioukas et al. 2019 training stage (IJCV, Sec. 3.3; shared/specs/vougioukas2019-sda.md §4): the temporal
generator against the frame, sequence and sync discriminators, each with its own Adam, on whole utterances of the
store's `face_sda` crop (`data.UtteranceDataset`). One update of every discriminator in use, then one of the
generator, per step [D]. The system's one stage ("sda", `models.sda.SYSTEM`).

The paper's decay is `SDAStage.learning_rates`: every `decay_every` epochs the generator's rate drops by 2 % and
each discriminator's by 10 %, stepwise, from the epoch count the loop passes (so a resumed run follows it). Not
here: the paper's early stop when validation AV sync has not improved for 5 epochs (a run trains `steps` steps).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from models.config import TrainConfig
from models.sda.data import UtteranceDataset
from models.sda.discriminators import (DiscriminatorsConfig, FrameDiscriminator, SequenceDiscriminator,
                                      SyncDiscriminator)
from models.sda.generator import SDAGenerator, SDAGeneratorConfig
from models.sda.losses import (SDALossConfig, bce, generator_loss, reconstruction_loss, sample_frames,
                               sample_snippets, snippets, sync_discriminator_loss)
from models.system import Stage, StepOutput, set_requires_grad, to_uint8_rows

DISCRIMINATORS = {"frame": FrameDiscriminator, "sync": SyncDiscriminator, "sequence": SequenceDiscriminator}


@dataclass(frozen=True)
class SDATrainConfig(TrainConfig):
    """Training of the temporal GAN (the loop's fields: `models.config.TrainConfig`).

    lr_g, lr_frame, lr_sequence, lr_sync: Adam learning rates (1e-4, 1e-4, 1e-5, 1e-5; P §3.3).
    beta1, beta2: every Adam's betas (0.5, 0.999) [D].
    decay_every: epochs between learning-rate drops (10); decay_g, decay_d: the fraction each drop takes off the
        generator's rate (0.02) and each discriminator's (0.1) (P §3.3). 0 turns a decay off.
    max_frames: frames per sample, longer clips cut (None: the split's longest clip; 75 on GRID).
    mirror: also every clip flipped left to right (P §4).
    cache_clips: clips each data process keeps.
    generator, discriminators: the networks' sizes; loss: the weights and the Tab. 5/6 switches (`SDALossConfig`).
    static_baseline: the static baseline of the ablations (spec §7): a generator without GRUs or noise
        (`generator.temporal` False, `generator.noise` "off"), trained by the frame D and the L1 alone
        (`loss.use_sync_d` and `loss.use_seq_d` False); one switch that sets those four fields.
    Presets: "paper" (batch 16 [D], whole utterances) and "small" (narrow networks, 16-frame samples, batch 2).
    """

    steps: int = 20000
    batch_size: int = 16
    lr_g: float = 1e-4
    lr_frame: float = 1e-4
    lr_sequence: float = 1e-5
    lr_sync: float = 1e-5
    beta1: float = 0.5
    beta2: float = 0.999
    decay_every: float = 10.0
    decay_g: float = 0.02
    decay_d: float = 0.1
    max_frames: int | None = None
    mirror: bool = True
    cache_clips: int = 16
    generator: SDAGeneratorConfig = field(default_factory=SDAGeneratorConfig)
    discriminators: DiscriminatorsConfig = field(default_factory=DiscriminatorsConfig)
    loss: SDALossConfig = field(default_factory=SDALossConfig)
    static_baseline: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.static_baseline:  # frozen: the derived sub-configs are set once, here (idempotent on a reload)
            object.__setattr__(self, "generator", replace(self.generator, temporal=False, noise="off"))
            object.__setattr__(self, "loss", replace(self.loss, use_sync_d=False, use_seq_d=False))
        if self.decay_every <= 0 or not (0 <= self.decay_g < 1 and 0 <= self.decay_d < 1):
            raise ValueError(f"decay_every must be > 0 and decay_g, decay_d in [0, 1), got {self.decay_every}, "
                             f"{self.decay_g}, {self.decay_d}")
        if self.generator.image_size != self.discriminators.image_size:
            raise ValueError(f"the generator renders {self.generator.image_size} but the discriminators read "
                             f"{self.discriminators.image_size}")

    @classmethod
    def presets(cls) -> dict:
        return {"paper": cls(),
                "small": cls(steps=300, batch_size=2, max_frames=16, checkpoint_every=100, sample_every=100,
                             generator=SDAGeneratorConfig.preset("small"),
                             discriminators=DiscriminatorsConfig.preset("small"))}


class SDAStage(Stage):
    """The temporal GAN (module docstring)."""

    name = "sda"
    Config = SDATrainConfig
    reads = ("face_sda", "audio")
    inference_modules = ("generator",)
    resume_may_differ = frozenset({"cache_clips"})

    def modules(self, cfg: SDATrainConfig) -> dict:
        out = {"generator": SDAGenerator(cfg.generator)}
        for name in cfg.loss.adversarial:
            out[f"{name}_d"] = DISCRIMINATORS[name](cfg.discriminators)
        return out

    @staticmethod
    def base_rates(cfg: SDATrainConfig) -> dict[str, float]:
        return {"generator": cfg.lr_g, "frame_d": cfg.lr_frame, "sequence_d": cfg.lr_sequence, "sync_d": cfg.lr_sync}

    def optimizers(self, cfg: SDATrainConfig, modules: dict) -> dict:
        lr = self.base_rates(cfg)
        return {name: torch.optim.Adam(m.parameters(), lr=lr[name], betas=(cfg.beta1, cfg.beta2))
                for name, m in modules.items()}

    def learning_rates(self, cfg: SDATrainConfig, epoch: float) -> dict[str, float]:
        """Each rate times (1 - decay)^⌊epoch / decay_every⌋: decay_g for the generator, decay_d for each
        discriminator in use (P §3.3)."""
        drops = int(epoch // cfg.decay_every)
        return {name: lr * (1 - (cfg.decay_g if name == "generator" else cfg.decay_d)) ** drops
                for name, lr in self.base_rates(cfg).items() if name == "generator" or name in
                {f"{d}_d" for d in cfg.loss.adversarial}}

    def dataset(self, store_dir: Path, split: str, cfg: SDATrainConfig, state: dict | None = None
                ) -> UtteranceDataset:
        return UtteranceDataset(store_dir, split, max_frames=cfg.max_frames, mirror=cfg.mirror, seed=cfg.seed,
                                cache_clips=cfg.cache_clips)

    def step(self, modules, optimizers, batch, cfg: SDATrainConfig, fabric) -> StepOutput:
        """batch: "video" (B, T, 3, H, W), "still" (B, 3, H, W), "audio" (B, T, 3200), "length" (B,). Losses
        "d/<frame|sync|sequence>" and "g/<frame|sync|sequence|rec|total>"; outputs "fake" (B, T, 3, H, W)."""
        loss_cfg = cfg.loss
        real, still, audio, lengths = batch["video"], batch["still"], batch["audio"], batch["length"]
        B = real.shape[0]
        fake = modules["generator"](still, audio, lengths).float()  # (B, T, 3, H, W)
        used = loss_cfg.adversarial
        # the samples each D sees this step (the loop's seeded RNG draws them, so a resume repeats them)
        rows = torch.arange(B, device=real.device)[:, None]
        frames = sample_frames(lengths, loss_cfg.frames_per_clip) if "frame" in used else None
        if "sync" in used:
            starts, shifted = sample_snippets(lengths, loss_cfg.snippets_per_clip, loss_cfg.min_shift)
        stills = still[:, None].expand(-1, loss_cfg.frames_per_clip, -1, -1, -1).flatten(0, 1)  # (B·k, 3, H, W)

        def logits(name: str, video: torch.Tensor, shifted_audio: bool = False, frozen: bool = False) -> torch.Tensor:
            d = modules[f"{name}_d"].module if frozen else modules[f"{name}_d"]  # frozen: unwrapped, no DDP reduction
            if name == "frame":
                return d(stills, video[rows, frames].flatten(0, 1)).float()
            if name == "sync":
                mouths, sound = snippets(video, audio, starts, shifted if shifted_audio else None)
                return d(mouths, sound).float()
            return d(video, audio, lengths).float()

        losses: dict[str, torch.Tensor] = {}
        if used:  # 1. every discriminator in use: real vs generated (detached); the sync D also vs shifted audio
            d_total = 0.0
            for name in used:
                set_requires_grad(modules[f"{name}_d"], True)
                if name == "sync":
                    d_loss = sync_discriminator_loss(logits(name, real), logits(name, real, shifted_audio=True),
                                                     logits(name, fake.detach()))
                else:
                    d_loss = bce(logits(name, real), 1.0) + bce(logits(name, fake.detach()), 0.0)
                losses[f"d/{name}"] = d_loss.detach()
                d_total = d_total + d_loss
            for name in used:
                optimizers[f"{name}_d"].zero_grad(set_to_none=True)
            fabric.backward(d_total)
            for name in used:
                optimizers[f"{name}_d"].step()
                set_requires_grad(modules[f"{name}_d"], False)

        # 2. the generator through the frozen discriminators and the lower-half L1
        with fabric.autocast():
            terms = {name: logits(name, fake, frozen=True) for name in used}
        if loss_cfg.use_l1:
            terms["rec"] = reconstruction_loss(fake, real, lengths, loss_cfg.l1_region)
        g_losses = generator_loss(terms, loss_cfg)
        optimizers["generator"].zero_grad(set_to_none=True)
        fabric.backward(g_losses["total"])
        optimizers["generator"].step()
        for name in used:
            set_requires_grad(modules[f"{name}_d"], True)
        losses.update({f"g/{k}": v.detach() for k, v in g_losses.items()})
        return StepOutput(losses, {"fake": fake.detach()})

    def samples(self, batch, out: StepOutput) -> dict[str, np.ndarray]:
        """"faces": up to 8 generated frames of the first clip over its real ones."""
        n = min(8, int(batch["length"][0]))
        return {"faces": to_uint8_rows(out.outputs["fake"][0, :n], batch["video"][0, :n])}
