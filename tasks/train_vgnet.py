"""Train ATVGnet's VG-net and its regression discriminator on a store (pure: no Prefect, no MLflow; the caller logs
through `on_step` and `on_sample`).

Chen et al. CVPR 2019, Sec. 3.2-3.4; public code `code/vgnet.py`. Decoupled training, as the paper does: VG-net
learns to render ground-truth landmarks (`storage.dataset.VGNetDataset`: T = 16 frames of one train-split clip, an
example frame of the same clip, landmarks normalised to about [-1, 1]); AT-net's predicted landmarks are used only at
inference. Each step (`train_step`, also used by `benchmarks/atvgnet_speed.py`) alternates two Adam updates
(lr 2e-4, betas (0.5, 0.999), DESIGN "Models") on one batch:

    fake, attention = G(example_face, landmarks, example_landmarks)           one generator forward per step
    1. discriminator: D(real), D(fake.detach()) -> `discriminator_loss` -> Adam step on D
    2. generator:     D(fake) with D's parameters frozen -> `generator_loss` (GAN + 10 x dynamic pixel-wise L1
                      weighted by detached attention + 0.5 + landmark regression, as `models.atvgnet.losses`
                      defines, with its ablation switches) -> Adam step on G

On CUDA the forwards run under bf16 autocast (`bf16`); losses are computed in float32. On CPU everything is float32.

Checkpoints `out_dir/vgnet-step{N:06d}.pt` every `checkpoint_every` steps and at the end. A checkpoint holds only
tensors and primitive containers, so `torch.load(path, weights_only=True)` reads it:
    format            "talkface.vgnet/1"
    step              steps done (one D and one G update each)
    generator         VG-net state dict             discriminator  regression D state dict
    opt_g, opt_d      the two Adam state dicts
    config            VGNetTrainConfig.to_dict() (generator, discriminator and loss configs nested)
    generator_config, discriminator_config, loss_config   the same three, also at the top level for loaders
    rng               {"torch", "cuda", "numpy", "python"} states
    store_dir         str, the training store
Resuming (`resume_from`) restores all of it and continues at the saved step with the same batches an uninterrupted
run would have drawn (`storage.dataset.StepBatchSampler`), so the losses continue identically on CPU (up to float
non-determinism on GPU).
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, NamedTuple

import numpy as np
import torch

from models.atvgnet.discriminator import DiscriminatorConfig, RegressionDiscriminator
from models.atvgnet.losses import VGNetLossConfig, discriminator_loss, generator_loss
from models.atvgnet.vg_net import VGNet, VGNetConfig
from models.config import DictConfig
from storage.dataset import StepBatchSampler, VGNetDataset, make_dataloader
from tasks import checkpoint
from tasks.checkpoint import resolve_device, rng_state, seed_everything, set_rng_state

CHECKPOINT_FORMAT = "talkface.vgnet/1"
PRESETS = ("paper", "small")


@dataclass(frozen=True)
class VGNetTrainConfig(DictConfig):
    """VG-net training parameters.

    steps: total training steps, each one discriminator and one generator update (a resumed run stops at the same
        total).
    batch_size: clips of T frames per step.
    lr, beta1, beta2: Adam for both networks (2e-4, 0.5, 0.999 as in the paper).
    seed: seeds torch, numpy and python, the model inits, the example-frame choice and the batch order.
    checkpoint_every: write a checkpoint every this many steps (0: only at the end).
    sample_every: call `on_sample` every this many steps (0: never).
    num_workers: DataLoader worker processes ("spawn"); 0 reads in the training process.
    T: video frames per sample (16).
    stride: frames between consecutive window starts within a clip.
    device: "auto" (cuda when available, else cpu), "cpu" or "cuda[:i]".
    bf16: run the forwards under bfloat16 autocast on CUDA (ignored on CPU, which always trains in float32).
    cpu_threads: torch intra-op threads while training (restored after); 0 leaves torch's setting. On a small,
        shared CPU, 1 avoids OpenMP threads spinning against other processes.
    cache_clips: clips whose faces each data process keeps in memory (`VGNetDataset`, LRU).
    generator: VG-net sizes and ablation switches (`VGNetConfig`; defaults are the paper's).
    discriminator: regression discriminator sizes (`DiscriminatorConfig`; defaults are the paper's).
    loss: loss weights and ablation switches (`VGNetLossConfig`; defaults are the paper's).
    `VGNetTrainConfig.preset("small", steps=...)` builds one with both networks at a named preset.
    """

    steps: int = 1000
    batch_size: int = 8
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 100
    num_workers: int = 0
    T: int = 16
    stride: int = 1
    device: str = "auto"
    bf16: bool = True
    cpu_threads: int = 0
    cache_clips: int = 16
    generator: VGNetConfig = field(default_factory=VGNetConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: VGNetLossConfig = field(default_factory=VGNetLossConfig)

    @classmethod
    def preset(cls, name: str, **overrides) -> "VGNetTrainConfig":
        """A config with the generator and discriminator at preset `name` ("paper": the published sizes; "small":
        narrow networks for CPU demos and tests) and the other fields as given. Raises KeyError on another name."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose from {PRESETS}")
        return cls(**{"generator": VGNetConfig.preset(name), "discriminator": DiscriminatorConfig.preset(name),
                      **overrides})


@dataclass
class VGNetTrainResult:
    """What a `train_vgnet` call did.

    step: steps done in total (== config.steps). losses: (step, {name: value}) of each step this call ran, names as
    passed to `on_step`. checkpoints: paths written by this call, in order; last_checkpoint: the final one.
    seconds: wall time of the call; step_seconds: mean wall time of one training step (data + both updates), over
    the steps after the first (which includes start-up). n_windows: training samples in the split. device: where
    it ran. batch_size: clips per step.
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

    @property
    def samples_per_second(self) -> float:
        """Training clips (of T frames each) per second of step time."""
        return self.batch_size / self.step_seconds if self.step_seconds else 0.0


def checkpoint_path(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / f"vgnet-step{step:06d}.pt"


def save_checkpoint(path: Path, *, generator: VGNet, discriminator: RegressionDiscriminator,
                    opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, step: int, config: VGNetTrainConfig,
                    store_dir: Path) -> Path:
    """Write a checkpoint (contents: module docstring) to a temporary name, then rename. Returns `path`."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "step": int(step),
        "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "discriminator": {k: v.detach().cpu() for k, v in discriminator.state_dict().items()},
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "config": config.to_dict(),
        "generator_config": generator.cfg.to_dict(),
        "discriminator_config": discriminator.cfg.to_dict(),
        "loss_config": config.loss.to_dict(),
        "rng": rng_state(),
        "store_dir": str(store_dir),
    }
    return checkpoint.save(state, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint with `torch.load(weights_only=True)` onto the CPU. Raises ValueError on another format."""
    return checkpoint.load(path, CHECKPOINT_FORMAT)


def load_vgnet(path: Path, device: str = "auto") -> tuple[VGNet, dict]:
    """(VG-net generator in eval mode on `device`, the raw checkpoint dict) from a checkpoint file."""
    ckpt = load_checkpoint(path)
    generator = VGNet(VGNetConfig.from_dict(ckpt["generator_config"]))
    generator.load_state_dict(ckpt["generator"])
    return generator.to(resolve_device(device)).eval(), ckpt


def to_uint8(images: torch.Tensor, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """float (..., C, H, W) in [low, high] -> uint8 (..., H, W, 3) (one channel repeated to three)."""
    x = ((images.detach().float().cpu() - low) / (high - low)).clamp(0, 1).mul(255).round().to(torch.uint8)
    if x.shape[-3] == 1:
        x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    return x.movedim(-3, -1).numpy()


def tile(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Rows of frames, each uint8 (n, H, W, 3) with the same n, H, W -> one uint8 (R*(H+pad)-pad, n*(W+pad)-pad, 3)
    image, padded in white."""
    n, H, W, _ = rows[0].shape
    out = np.full((len(rows) * (H + pad) - pad, n * (W + pad) - pad, 3), 255, dtype=np.uint8)
    for r, frames in enumerate(rows):
        for c, frame in enumerate(frames):
            out[r * (H + pad) : r * (H + pad) + H, c * (W + pad) : c * (W + pad) + W] = frame
    return out


def sample_grids(fake: torch.Tensor, real: torch.Tensor, attention: torch.Tensor, *, max_items: int = 2,
                 max_frames: int = 8) -> dict[str, np.ndarray]:
    """Images of one batch for `on_sample`, uint8 HWC:
      "frames": per clip (up to `max_items`), a row of generated frames over a row of the real ones;
      "attention": per clip, a row of attention maps (white = the generated motion, black = the example face).
    fake, real: (B, T, 3, H, W) in [-1, 1]; attention (B, T, 1, H, W) in [0, 1]. At most `max_frames` frames per
    row, evenly spaced over T."""
    B, T = fake.shape[:2]
    cols = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    items = range(min(B, max_items))
    frames = [row for b in items for row in (to_uint8(fake[b, cols]), to_uint8(real[b, cols]))]
    maps = [to_uint8(attention[b, cols], 0.0, 1.0) for b in items]
    return {"frames": tile(frames), "attention": tile(maps)}


def train_vgnet(
    store_dir: Path,
    out_dir: Path,
    config: VGNetTrainConfig = VGNetTrainConfig(),
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_sample: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    resume_from: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> VGNetTrainResult:
    """Train VG-net and its discriminator on `store_dir`'s train split for `config.steps` steps; checkpoints go to
    `out_dir` (created).

    on_step(step, losses) after every step (step counts from 1): losses maps "g/<name>" (the generator loss's terms,
    "g/total" the optimised sum) and "d/<name>" (the discriminator's) to floats.
    on_sample(step, images) every `config.sample_every` steps, with `sample_grids` of that step's batch (generated |
    real frames, attention maps), uint8 HWC arrays.
    on_checkpoint(path) after each checkpoint is written (e.g. to upload it while training goes on).
    resume_from: a checkpoint of this function; training continues from its step with its networks, optimizers and
    RNG states (its config must match `config` except in `RESUME_MAY_DIFFER`, else ValueError).
    Raises ValueError when the train split has fewer windows than a batch.
    """
    with checkpoint.torch_threads(config.cpu_threads):
        return _train(Path(store_dir), Path(out_dir), config, on_step, on_sample, resume_from, on_checkpoint)


def set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class StepOutput(NamedTuple):
    """What one `train_step` did: losses {"g/<name>": float, "d/<name>": float} (the terms of `generator_loss` and
    `discriminator_loss`, "g/total" and "d/total" the optimised sums); fake float32 (B, T, 3, H, W) in [-1, 1] and
    attention float32 (B, T, 1, H, W) in [0, 1], the generator's output of this step (detached)."""

    losses: dict[str, float]
    fake: torch.Tensor
    attention: torch.Tensor


def train_step(generator: VGNet, discriminator: RegressionDiscriminator, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, batch: dict[str, torch.Tensor], loss_cfg: VGNetLossConfig,
               autocast: Callable[[], ContextManager] = nullcontext) -> StepOutput:
    """One VG-net training step on one batch already on the networks' device: a discriminator update, then a
    generator update (module docstring). Both networks must be in training mode.

    batch: the `VGNetDataset` fields, collated: "example_face" (B, 3, H, W), "example_landmarks" (B, 136),
    "landmarks" (B, T, 136), "frames" (B, T, 3, H, W), float32.
    autocast: a context factory the forwards run under (bf16 autocast on CUDA; `nullcontext` for float32); the
    losses are computed in float32. Reading the losses as floats waits for the device (one sync per step).
    """
    real, landmarks = batch["frames"], batch["landmarks"]
    example_face, example_landmarks = batch["example_face"], batch["example_landmarks"]
    with autocast():
        fake, attention = generator(example_face, landmarks, example_landmarks)  # (B, T, 3, H, W), (B, T, 1, H, W)
    fake, attention = fake.float(), attention.float()

    # 1. discriminator update on real and (detached) generated clips
    set_requires_grad(discriminator, True)
    with autocast():
        real_score, real_landmarks = discriminator(real, example_landmarks)  # (B,), (B, T, 136)
        fake_score, fake_landmarks = discriminator(fake.detach(), example_landmarks)
    d_losses = discriminator_loss(real_score.float(), fake_score.float(), real_landmarks.float(),
                                  fake_landmarks.float(), landmarks, loss_cfg)
    opt_d.zero_grad(set_to_none=True)
    d_losses["total"].backward()
    opt_d.step()

    # 2. generator update through the (frozen, just updated) discriminator
    set_requires_grad(discriminator, False)
    with autocast():
        fake_score_g, fake_landmarks_g = discriminator(fake, example_landmarks)
    g_losses = generator_loss(fake, real, attention, fake_score_g.float(), fake_landmarks_g.float(), landmarks,
                              loss_cfg)
    opt_g.zero_grad(set_to_none=True)
    g_losses["total"].backward()
    opt_g.step()
    set_requires_grad(discriminator, True)

    values = {f"g/{k}": float(v.detach()) for k, v in g_losses.items()}
    values.update({f"d/{k}": float(v.detach()) for k, v in d_losses.items()})
    return StepOutput(values, fake.detach(), attention.detach())


def _train(store_dir: Path, out_dir: Path, config: VGNetTrainConfig, on_step, on_sample, resume_from,
           on_checkpoint) -> VGNetTrainResult:
    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    seed_everything(config.seed)

    generator = VGNet(config.generator).to(device)
    discriminator = RegressionDiscriminator(config.discriminator).to(device)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=betas)
    step = 0
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from)
        checkpoint.check_resumable(ckpt["config"], config.to_dict(), RESUME_MAY_DIFFER)
        generator.load_state_dict(ckpt["generator"])
        discriminator.load_state_dict(ckpt["discriminator"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])

    dataset = VGNetDataset(store_dir, "train", T=config.T, stride=config.stride, seed=config.seed,
                           cache_clips=config.cache_clips)
    sampler = StepBatchSampler(len(dataset), config.batch_size, seed=config.seed, start_step=step)
    loader = make_dataloader(dataset, seed=config.seed, num_workers=config.num_workers, batch_sampler=sampler,
                             pin_memory=device.type == "cuda")
    use_bf16 = config.bf16 and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext

    losses: list[tuple[int, dict[str, float]]] = []
    checkpoints: list[Path] = []
    step_times: list[float] = []

    def save() -> None:
        checkpoints.append(save_checkpoint(checkpoint_path(out_dir, step), generator=generator,
                                           discriminator=discriminator, opt_g=opt_g, opt_d=opt_d, step=step,
                                           config=config, store_dir=store_dir))
        if on_checkpoint is not None:
            on_checkpoint(checkpoints[-1])

    generator.train()
    discriminator.train()
    batches = iter(loader)
    while step < config.steps:
        t_step = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        out = train_step(generator, discriminator, opt_g, opt_d, batch, config.loss, autocast)
        step += 1
        losses.append((step, out.losses))
        step_times.append(time.perf_counter() - t_step)
        if on_step is not None:
            on_step(step, out.losses)
        if on_sample is not None and config.sample_every and step % config.sample_every == 0:
            on_sample(step, sample_grids(out.fake, batch["frames"], out.attention))
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save()
    if not checkpoints or checkpoints[-1] != checkpoint_path(out_dir, step):
        save()
    del batches, loader  # stops persistent workers
    timed = step_times[1:] or step_times
    return VGNetTrainResult(step=step, losses=losses, checkpoints=checkpoints, last_checkpoint=checkpoints[-1],
                            seconds=time.time() - t0, step_seconds=float(np.mean(timed)) if timed else 0.0,
                            n_windows=len(dataset), device=str(device), batch_size=config.batch_size)


RESUME_MAY_DIFFER = {"steps", "checkpoint_every", "sample_every", "num_workers", "device", "bf16", "cpu_threads",
                     "cache_clips"}
