"""Train a SyncNet audio-visual sync expert on a store (pure: no Prefect, no MLflow; the caller logs through
`on_step` and `on_checkpoint`).

Chung & Zisserman, "Out of time", ACCV workshops 2016: self-supervised, from in-sync talking faces. Each
sample (`storage.dataset.SyncNetDataset`) is 5 consecutive crops v with their own 0.2 s of MFCC a+ (a genuine pair,
y = 1) and an off-sync MFCC window a- (the same clip's audio shifted by min_shift..max_shift frames, or another clip's
audio; y = 0). The loss is the paper's contrastive loss on the Euclidean distance d = ||f_v(v) - f_a(a)||_2 between
the two streams' embeddings (Hadsell et al. 2006, the form the paper gives):

    E = 1 / (2N) * sum_n [ y_n d_n^2 + (1 - y_n) max(margin - d_n, 0)^2 ]

over the batch's N = 2B pairs (B genuine, B off-sync; each video embedding is used for both its pairs). The
BCE-on-cosine variant used by later lip-sync work (Wav2Lip's expert) is not used: the distance-based form is the one
SyncNet's offset protocol (`tasks.sync.av_offset`) measures with. Adam (lr 1e-4 by default, betas 0.9, 0.999).

Logged per step: "loss" (E), "dist_pos", "dist_neg" (mean d of the genuine and off-sync pairs) and "rank_acc" (the
fraction of samples whose genuine pair is closer than their off-sync pair).

Checkpoints `out_dir/syncnet-step{N:06d}.pt` every `checkpoint_every` steps and at the end. A checkpoint holds only
tensors and primitive containers, so `torch.load(path, weights_only=True)` reads it:
    format        "talkface.syncnet/1"
    step          optimizer steps done
    model         SyncNet state dict         optimizer  Adam state dict
    config        SyncNetTrainConfig.to_dict()   model_config  SyncNetConfig.to_dict()
    rng           {"torch", "cuda", "numpy", "python"} states
    store_dir     str, the training store
Resuming (`resume_from`) restores all of it and continues at the saved step with the same batches an uninterrupted
run would have drawn (`storage.dataset.StepBatchSampler`), so the losses continue identically on CPU (up to float
non-determinism on GPU).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from models.config import DictConfig
from models.syncnet.syncnet import SyncNet, SyncNetConfig
from storage.dataset import StepBatchSampler, SyncNetDataset, make_dataloader
from tasks import checkpoint
from tasks.checkpoint import resolve_device, rng_state, seed_everything, set_rng_state

CHECKPOINT_FORMAT = "talkface.syncnet/1"
PRESETS = ("paper", "small")


@dataclass(frozen=True)
class SyncNetTrainConfig(DictConfig):
    """SyncNet training parameters.

    steps: total optimizer steps (a resumed run stops at the same total).
    batch_size: samples per step, each giving one genuine and one off-sync pair.
    lr, beta1, beta2: Adam.
    margin: the contrastive loss margin on the embedding distance.
    seed: seeds torch, numpy and python, the model init, the negatives and the batch order.
    checkpoint_every: write a checkpoint every this many steps (0: only at the end).
    num_workers: DataLoader worker processes ("spawn"); 0 reads in the training process.
    stride: frames between consecutive window starts within a clip.
    min_shift, max_shift: the off-sync audio of the same clip is shifted by min_shift..max_shift video frames.
    p_other_clip: probability that the off-sync audio comes from another clip instead.
    draws_per_window: different negatives per window (the dataset's length is windows x draws).
    device: "auto" (cuda when available, else cpu), "cpu" or "cuda[:i]".
    cpu_threads: torch intra-op threads while training (restored after); 0 leaves torch's setting. On a small,
        shared CPU, 1 avoids OpenMP threads spinning against other processes.
    cache_clips: clips whose crops and MFCC each data process keeps in memory (LRU; 256 clips' mouths ~240 MB,
        faces ~950 MB).
    model: SyncNet sizes and input conventions (`SyncNetConfig`; the defaults are syncnet_v2's architecture, which
        trains on the store's face crops; `SyncNetTrainConfig.preset("small", ...)` trains on mouth crops on a CPU).
    """

    steps: int = 20000
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    margin: float = 1.0
    seed: int = 0
    checkpoint_every: int = 1000
    num_workers: int = 0
    stride: int = 1
    min_shift: int = 5
    max_shift: int = 15
    p_other_clip: float = 0.25
    draws_per_window: int = 8
    device: str = "auto"
    cpu_threads: int = 0
    cache_clips: int = 256
    model: SyncNetConfig = field(default_factory=SyncNetConfig)

    def __post_init__(self):
        if self.margin <= 0 or self.batch_size < 1 or self.steps < 0:
            raise ValueError(f"need margin > 0, batch_size >= 1, steps >= 0; got {self.margin}, {self.batch_size}, "
                             f"{self.steps}")

    @classmethod
    def preset(cls, name: str, **overrides) -> "SyncNetTrainConfig":
        """A config with the model at SyncNet preset `name` ("paper": syncnet_v2's architecture on face crops;
        "small": the CPU-sized mouth-crop model) and the other fields as given. Raises KeyError on another name."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose from {PRESETS}")
        return cls(**{"model": SyncNetConfig.preset(name), **overrides})


@dataclass
class SyncNetTrainResult:
    """What a `train_syncnet` call did.

    step: optimizer steps done in total (== config.steps). losses: (step, {name: value}) of each step this call ran,
    names as passed to `on_step`. checkpoints: paths written by this call, in order; last_checkpoint: the final one.
    seconds: wall time of the call; step_seconds: mean wall time of one step (data + update) over the steps after
    the first. n_windows: distinct training windows in the split. device: where it ran. batch_size: samples a step.
    """

    step: int
    losses: list[tuple[int, dict[str, float]]]
    checkpoints: list[Path]
    last_checkpoint: Path
    seconds: float
    step_seconds: float
    n_windows: int
    device: str
    batch_size: int


def contrastive_loss(video: torch.Tensor, audio: torch.Tensor, label: torch.Tensor, margin: float) -> torch.Tensor:
    """The paper's contrastive loss: mean over pairs of [y d^2 + (1 - y) max(margin - d, 0)^2] / 2, d the Euclidean
    distance between rows of video (N, E) and audio (N, E); label (N,) is 1 for genuine pairs, 0 for off-sync."""
    d = F.pairwise_distance(video, audio)
    label = label.to(d.dtype)
    return 0.5 * (label * d.pow(2) + (1 - label) * F.relu(margin - d).pow(2)).mean()


def train_step(model: SyncNet, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               margin: float) -> dict[str, float]:
    """One update on one batch already on the model's device ("video" uint8 (B, 5, H, W, 3), "audio" and "negative"
    float32 (B, 13, 20)); the model must be in training mode. Returns the logged values (module docstring)."""
    B = batch["video"].shape[0]
    v = model.embed_video(batch["video"])  # (B, E)
    a = model.embed_audio(torch.cat([batch["audio"], batch["negative"]]))  # (2B, E): genuine, then off-sync
    video = torch.cat([v, v])
    label = torch.cat([torch.ones(B, device=v.device), torch.zeros(B, device=v.device)])
    loss = contrastive_loss(video, a, label, margin)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        d = F.pairwise_distance(video, a)
        pos, neg = d[:B], d[B:]
    return {"loss": float(loss.detach()), "dist_pos": float(pos.mean()), "dist_neg": float(neg.mean()),
            "rank_acc": float((pos < neg).float().mean())}


def checkpoint_path(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / f"syncnet-step{step:06d}.pt"


def save_checkpoint(path: Path, *, model: SyncNet, optimizer: torch.optim.Optimizer, step: int,
                    config: SyncNetTrainConfig, store_dir: Path) -> Path:
    """Write a checkpoint (contents: module docstring) to a temporary name, then rename. Returns `path`."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "step": int(step),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "config": config.to_dict(),
        "model_config": model.cfg.to_dict(),
        "rng": rng_state(),
        "store_dir": str(store_dir),
    }
    return checkpoint.save(state, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint with `torch.load(weights_only=True)` onto the CPU. Raises ValueError on another format."""
    return checkpoint.load(path, CHECKPOINT_FORMAT)


def load_syncnet(path: Path, device: str = "auto") -> tuple[SyncNet, dict]:
    """(SyncNet in eval mode on `device`, the raw checkpoint dict) from a checkpoint of `train_syncnet`."""
    ckpt = load_checkpoint(path)
    return model_from_checkpoint(ckpt).to(resolve_device(device)), ckpt


def model_from_checkpoint(ckpt: dict) -> SyncNet:
    """The SyncNet (eval mode, CPU) of a checkpoint dict already read (`load_checkpoint`)."""
    model = SyncNet(SyncNetConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval()


def train_syncnet(
    store_dir: Path,
    out_dir: Path,
    config: SyncNetTrainConfig = SyncNetTrainConfig(),
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    resume_from: Path | None = None,
) -> SyncNetTrainResult:
    """Train SyncNet on `store_dir`'s train split for `config.steps` steps; checkpoints go to `out_dir` (created).

    on_step(step, values) after every optimizer step (step counts from 1): values maps "loss", "dist_pos",
    "dist_neg", "rank_acc" to floats (module docstring).
    on_checkpoint(path) after each checkpoint is written (e.g. to upload it while training goes on).
    resume_from: a checkpoint of this function; training continues from its step with its model, optimizer and RNG
    states (its config must match `config` except in `RESUME_MAY_DIFFER`, else ValueError).
    Raises ValueError when the train split has fewer samples than a batch.
    """
    with checkpoint.torch_threads(config.cpu_threads):
        return _train(Path(store_dir), Path(out_dir), config, on_step, on_checkpoint, resume_from)


def _train(store_dir: Path, out_dir: Path, config: SyncNetTrainConfig, on_step, on_checkpoint,
           resume_from) -> SyncNetTrainResult:
    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    seed_everything(config.seed)

    model = SyncNet(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    step = 0
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from)
        checkpoint.check_resumable(ckpt["config"], config.to_dict(), RESUME_MAY_DIFFER)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])

    dataset = SyncNetDataset(store_dir, "train", crop=config.model.crop, stride=config.stride, seed=config.seed,
                             min_shift=config.min_shift, max_shift=config.max_shift,
                             p_other_clip=config.p_other_clip, draws_per_window=config.draws_per_window,
                             cache_clips=config.cache_clips)
    sampler = StepBatchSampler(len(dataset), config.batch_size, seed=config.seed, start_step=step)
    loader = make_dataloader(dataset, seed=config.seed, num_workers=config.num_workers, batch_sampler=sampler,
                             pin_memory=device.type == "cuda")

    losses: list[tuple[int, dict[str, float]]] = []
    checkpoints: list[Path] = []
    step_times: list[float] = []

    def save() -> None:
        checkpoints.append(save_checkpoint(checkpoint_path(out_dir, step), model=model, optimizer=optimizer,
                                           step=step, config=config, store_dir=store_dir))
        if on_checkpoint is not None:
            on_checkpoint(checkpoints[-1])

    model.train()
    batches = iter(loader)
    while step < config.steps:
        t_step = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        values = train_step(model, optimizer, batch, config.margin)
        step += 1
        losses.append((step, values))
        step_times.append(time.perf_counter() - t_step)
        if on_step is not None:
            on_step(step, values)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save()
    if not checkpoints or checkpoints[-1] != checkpoint_path(out_dir, step):
        save()
    del batches, loader  # stops persistent workers
    timed = step_times[1:] or step_times
    return SyncNetTrainResult(step=step, losses=losses, checkpoints=checkpoints, last_checkpoint=checkpoints[-1],
                              seconds=time.time() - t0, step_seconds=float(np.mean(timed)) if timed else 0.0,
                              n_windows=len(dataset.windows), device=str(device), batch_size=config.batch_size)


RESUME_MAY_DIFFER = {"steps", "checkpoint_every", "num_workers", "device", "cpu_threads", "cache_clips"}
