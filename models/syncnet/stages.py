"""SyncNet's one training stage (Chung & Zisserman, "Out of time", ACCV workshops 2016), trained by
`tasks.training.train_stage`: self-supervised, from in-sync talking faces.

Each sample (`SyncNetDataset`) is 5 consecutive crops v with their own 0.2 s of MFCC a+ (a genuine pair, y = 1) and
an off-sync MFCC window a- (the same clip's audio shifted by min_shift..max_shift frames, or another clip's audio;
y = 0). The loss is the paper's contrastive loss on the Euclidean distance d = ||f_v(v) - f_a(a)||_2 between the two
streams' embeddings (Hadsell et al. 2006, the form the paper gives):

    E = 1 / (2N) * sum_n [ y_n d_n^2 + (1 - y_n) max(margin - d_n, 0)^2 ]

over the batch's N = 2B pairs (B genuine, B off-sync; each video embedding is used for both its pairs). The
BCE-on-cosine variant used by later lip-sync work (Wav2Lip's expert) is not used: the distance-based form is the one
SyncNet's offset protocol (`tasks.sync.av_offset`) measures with. Adam (lr 1e-4 by default, betas 0.9, 0.999).

Logged per step: "loss" (E), "dist_pos", "dist_neg" (mean d of the genuine and off-sync pairs) and "rank_acc" (the
fraction of samples whose genuine pair is closer than their off-sync pair).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from models.config import TrainConfig
from models.syncnet.data import SyncNetDataset
from models.syncnet.syncnet import SyncNet, SyncNetConfig
from models.system import Stage, StepOutput


@dataclass(frozen=True)
class SyncNetTrainConfig(TrainConfig):
    """SyncNet training (the loop's fields: `models.config.TrainConfig`).

    lr, beta1, beta2: Adam. margin: the contrastive loss margin on the embedding distance.
    stride: frames between consecutive window starts within a clip.
    min_shift, max_shift: the off-sync audio of the same clip is shifted by min_shift..max_shift video frames.
    p_other_clip: probability that the off-sync audio comes from another clip instead.
    draws_per_window: different negatives per window (the dataset's length is windows x draws).
    cache_clips: clips whose crops and MFCC each data process keeps in memory (LRU; 256 clips' mouths ~240 MB,
        faces ~950 MB).
    model: SyncNet sizes and input conventions (`SyncNetConfig`).
    Presets: "paper" (syncnet_v2's architecture, on face crops), "small" (a CPU-sized model on mouth crops); both
    2000 steps at batch 32.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    margin: float = 1.0
    stride: int = 1
    min_shift: int = 5
    max_shift: int = 15
    p_other_clip: float = 0.25
    draws_per_window: int = 8
    cache_clips: int = 256
    model: SyncNetConfig = field(default_factory=SyncNetConfig)

    def __post_init__(self):
        super().__post_init__()
        if self.margin <= 0:
            raise ValueError(f"need margin > 0, got {self.margin}")

    @classmethod
    def presets(cls) -> dict:
        return {name: cls(model=SyncNetConfig.preset(name)) for name in ("paper", "small")}


def contrastive_loss(video: torch.Tensor, audio: torch.Tensor, label: torch.Tensor, margin: float) -> torch.Tensor:
    """The paper's contrastive loss: mean over pairs of [y d^2 + (1 - y) max(margin - d, 0)^2] / 2, d the Euclidean
    distance between rows of video (N, E) and audio (N, E); label (N,) is 1 for genuine pairs, 0 for off-sync."""
    d = F.pairwise_distance(video, audio)
    label = label.to(d.dtype)
    return 0.5 * (label * d.pow(2) + (1 - label) * F.relu(margin - d).pow(2)).mean()


class SyncNetStage(Stage):
    """The SyncNet expert (module docstring)."""

    name = "syncnet"
    Config = SyncNetTrainConfig
    reads = ("mouth", "face", "mfcc")
    inference_modules = ("syncnet",)
    resume_may_differ = frozenset({"cache_clips"})

    def modules(self, cfg: SyncNetTrainConfig) -> dict:
        return {"syncnet": SyncNet(cfg.model)}

    def optimizers(self, cfg: SyncNetTrainConfig, modules: dict) -> dict:
        return {"syncnet": torch.optim.Adam(modules["syncnet"].parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def dataset(self, store_dir: Path, split: str, cfg: SyncNetTrainConfig,
                state: dict | None = None) -> SyncNetDataset:
        return SyncNetDataset(store_dir, split, crop=cfg.model.crop, stride=cfg.stride, seed=cfg.seed,
                              min_shift=cfg.min_shift, max_shift=cfg.max_shift, p_other_clip=cfg.p_other_clip,
                              draws_per_window=cfg.draws_per_window, cache_clips=cfg.cache_clips)

    def step(self, modules, optimizers, batch, cfg: SyncNetTrainConfig, fabric) -> StepOutput:
        """batch: "video" uint8 (B, 5, H, W, 3), "audio" and "negative" float32 (B, 13, 20)."""
        B = batch["video"].shape[0]
        v, a = modules["syncnet"](batch["video"], torch.cat([batch["audio"], batch["negative"]]))  # (B, E), (2B, E)
        video = torch.cat([v, v])
        label = torch.cat([torch.ones(B, device=v.device), torch.zeros(B, device=v.device)])
        loss = contrastive_loss(video, a, label, cfg.margin)
        optimizer = optimizers["syncnet"]
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        with torch.no_grad():
            d = F.pairwise_distance(video, a)
            pos, neg = d[:B], d[B:]
        return StepOutput({"loss": loss.detach(), "dist_pos": pos.mean(), "dist_neg": neg.mean(),
                           "rank_acc": (pos < neg).float().mean()})
