"""Train ATVGnet's AT-net on a store (pure: no Prefect, no MLflow; the caller logs through `on_step`).

Chen et al. CVPR 2019, Sec. 3.1; public code `code/atnet.py`: MSE between predicted and ground-truth landmark PCA
coefficients (B, 16, 6), Adam lr 2e-4, betas (0.5, 0.999) (DESIGN "Models"). Data: `storage.dataset.ATNetDataset`
on the store's train split, projected with the store's `pca.npz`.

Checkpoints `out_dir/atnet-step{N:06d}.pt` every `checkpoint_every` steps and at the end. A checkpoint holds only
tensors and primitive containers, so `torch.load(path, weights_only=True)` reads it:
    format      "talkface.atnet/1"
    step        optimizer steps done
    model       AT-net state dict          optimizer  Adam state dict
    config      TrainConfig.to_dict()      model_config  ATNetConfig.to_dict()
    pca         {mean (136,), components (6, 136), explained_variance (6,), crop_size} as tensors/int: the basis the
                model's outputs live in, so evaluation and generation need no store
    rng         {"torch", "cuda", "numpy", "python"} states
    store_dir   str, the training store
Resuming (`resume_from`) restores all of it and continues at the saved step with the same batches an uninterrupted
run would have drawn (`storage.dataset.StepBatchSampler`), so the losses continue identically (up to float
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

from models.atvgnet.at_net import ATNet, ATNetConfig
from models.config import DictConfig
from storage.dataset import ATNetDataset, StepBatchSampler, make_dataloader
from tasks import checkpoint
from tasks.checkpoint import resolve_device, rng_state, seed_everything, set_rng_state
from tasks.landmark_pca import LandmarkPCA, from_dict

CHECKPOINT_FORMAT = "talkface.atnet/1"


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    """AT-net training parameters.

    steps: total optimizer steps (a resumed run stops at the same total).
    batch_size: windows per step (the public code uses 16).
    lr, beta1, beta2: Adam (2e-4, 0.5, 0.999 as in the paper).
    seed: seeds torch, numpy and python, the model init, the example-frame choice and the batch order.
    checkpoint_every: write a checkpoint every this many steps (0: only at the end).
    num_workers: DataLoader worker processes ("spawn"); 0 reads in the training process.
    T: video frames per sample (16).
    stride: frames between consecutive window starts within a clip.
    device: "auto" (cuda when available, else cpu), "cpu" or "cuda[:i]".
    cpu_threads: torch intra-op threads while training (restored after); 0 leaves torch's setting. On a small,
        shared CPU, 1 avoids OpenMP threads spinning against other processes (steps became 3-10x slower that way).
    model: AT-net sizes (`ATNetConfig`; the defaults are the paper's).
    """

    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    checkpoint_every: int = 100
    num_workers: int = 0
    T: int = 16
    stride: int = 1
    device: str = "auto"
    cpu_threads: int = 0
    model: ATNetConfig = field(default_factory=ATNetConfig)


@dataclass
class TrainResult:
    """What a `train_atnet` call did.

    step: optimizer steps done in total (== config.steps). losses: (step, loss) of each step this call ran.
    checkpoints: paths written by this call, in order; last_checkpoint: the final one. seconds: wall time.
    n_windows: training samples in the split. device: where it ran.
    """

    step: int
    losses: list[tuple[int, float]]
    checkpoints: list[Path]
    last_checkpoint: Path
    seconds: float
    n_windows: int
    device: str


def pca_to_dict(pca: LandmarkPCA) -> dict:
    return {
        "mean": torch.from_numpy(pca.mean.copy()),
        "components": torch.from_numpy(pca.components.copy()),
        "explained_variance": torch.from_numpy(pca.explained_variance.copy()),
        "crop_size": int(pca.crop_size),
    }


def checkpoint_path(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / f"atnet-step{step:06d}.pt"


def save_checkpoint(path: Path, *, model: ATNet, optimizer: torch.optim.Optimizer, step: int, config: TrainConfig,
                    pca: LandmarkPCA, store_dir: Path) -> Path:
    """Write a checkpoint (contents: module docstring) to a temporary name, then rename. Returns `path`."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "step": int(step),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "config": config.to_dict(),
        "model_config": model.cfg.to_dict(),
        "pca": pca_to_dict(pca),
        "rng": rng_state(),
        "store_dir": str(store_dir),
    }
    return checkpoint.save(state, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint with `torch.load(weights_only=True)` onto the CPU. Raises ValueError on another format."""
    return checkpoint.load(path, CHECKPOINT_FORMAT)


def load_atnet(path: Path, device: str = "auto") -> tuple[ATNet, LandmarkPCA, dict]:
    """(AT-net in eval mode on `device`, its LandmarkPCA, the raw checkpoint dict) from a checkpoint file."""
    ckpt = load_checkpoint(path)
    model = ATNet(ATNetConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(resolve_device(device)).eval(), from_dict(ckpt["pca"]), ckpt


def train_atnet(
    store_dir: Path,
    out_dir: Path,
    config: TrainConfig = TrainConfig(),
    on_step: Callable[[int, float], None] | None = None,
    resume_from: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Train AT-net on `store_dir`'s train split for `config.steps` steps; checkpoints go to `out_dir` (created).

    on_step(step, loss) is called after every optimizer step (step counts from 1; loss is the batch MSE, a float).
    on_checkpoint(path) is called after each checkpoint is written (e.g. to upload it while training goes on).
    resume_from: a checkpoint of this function; training continues from its step with its model, optimizer and RNG
    states and PCA (its config must match `config` except in `RESUME_MAY_DIFFER`: steps, checkpoint_every,
    num_workers, device, cpu_threads; else ValueError).
    Raises FileNotFoundError when the store has no pca.npz, ValueError when the train split has too few windows.
    """
    with checkpoint.torch_threads(config.cpu_threads):
        return _train(Path(store_dir), Path(out_dir), config, on_step, resume_from, on_checkpoint)


def _train(store_dir: Path, out_dir: Path, config: TrainConfig, on_step, resume_from, on_checkpoint) -> TrainResult:
    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    seed_everything(config.seed)

    model = ATNet(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    step, pca = 0, None
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from)
        checkpoint.check_resumable(ckpt["config"], config.to_dict(), RESUME_MAY_DIFFER)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, pca = int(ckpt["step"]), from_dict(ckpt["pca"])
        set_rng_state(ckpt["rng"])

    dataset = ATNetDataset(store_dir, "train", pca=pca, T=config.T, stride=config.stride, seed=config.seed)
    sampler = StepBatchSampler(len(dataset), config.batch_size, seed=config.seed, start_step=step)
    loader = make_dataloader(dataset, seed=config.seed, num_workers=config.num_workers, batch_sampler=sampler,
                             pin_memory=device.type == "cuda")

    losses: list[tuple[int, float]] = []
    checkpoints: list[Path] = []

    def save() -> None:
        checkpoints.append(save_checkpoint(checkpoint_path(out_dir, step), model=model, optimizer=optimizer, step=step,
                                           config=config, pca=dataset.pca, store_dir=store_dir))
        if on_checkpoint is not None:
            on_checkpoint(checkpoints[-1])

    model.train()
    batches = iter(loader)
    while step < config.steps:
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        pred = model(batch["example_landmarks"], batch["mfcc"])  # (B, T, 6)
        loss = F.mse_loss(pred, batch["landmarks"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        value = float(loss.detach())
        losses.append((step, value))
        if on_step is not None:
            on_step(step, value)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save()
    if not checkpoints or checkpoints[-1] != checkpoint_path(out_dir, step):
        save()
    del batches, loader  # stops persistent workers
    return TrainResult(step=step, losses=losses, checkpoints=checkpoints, last_checkpoint=checkpoints[-1],
                       seconds=time.time() - t0, n_windows=len(dataset), device=str(device))


RESUME_MAY_DIFFER = {"steps", "checkpoint_every", "num_workers", "device", "cpu_threads"}
