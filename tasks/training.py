"""The one training loop of every stage of every system, on Lightning Fabric (pure: no Prefect, no MLflow; the
caller logs through `on_step`, `on_sample` and `on_checkpoint`).

Fabric gives the devices (accelerator auto/cpu/cuda), the precision (`bf16-mixed` on GPU, float32 on CPU) and DDP
over several processes, GPUs or nodes (started by `tasks.launch`, or by `fabric run` / `torchrun` / SLURM yourself).
The loop keeps what makes a run reproducible and resumable (`../shared/specs/systems.md`):
- every generator seeded before the modules are built; batches in a seeded per-step order
  (`storage.dataset.StepBatchSampler`), rank-aware: N ranks together take the global batch one process takes, and
  BatchNorm statistics are taken over the global batch (`tasks.sync_batchnorm`), so N processes compute the losses
  of one (up to float reduction order);
- checkpoints `<out_dir>/<stage>-stepNNNNNN.pt` every `checkpoint_every` steps and at the end, written by rank 0
  (atomic rename), holding only tensors and primitive containers, read back with `torch.load(weights_only=True)`:
      format "talkface.train/1"   system, stage   step
      modules {name: state dict}   optimizers {name: state dict}
      config  the stage config's to_dict()   extra  the stage's `extra_state` (e.g. AT-net's PCA basis)
      rng  rank 0's {"torch", "cuda", "numpy", "python"} states   store_dir  str
      frozen  {name: {"stage", "module", "config", "state"}}: the earlier stages' networks it uses (`Stage.uses`)
- resuming restores all of it, continues at the saved step with the batches an uninterrupted run would have drawn,
  and refuses a checkpoint of another system or stage, or a config that differs outside the fields that may
  (`models.config.RESUME_MAY_DIFFER` and the stage's `resume_may_differ`).
Logged values are averaged over ranks; `on_*` callbacks run on rank 0 only.

Frozen networks (`Stage.uses`) run in the training precision like the trained ones (`FrozenNetwork`: Fabric's
precision around their forward), but outside Fabric's strategy wrapper, so outside DDP.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from lightning_fabric import Fabric
from lightning_fabric.plugins import Precision
from torch import nn

from models.config import RESUME_MAY_DIFFER
from models.system import Stage
from storage import location
from storage.dataset import StepBatchSampler, make_dataloader
from tasks import checkpoint
from tasks.checkpoint import rng_state, seed_everything, set_rng_state

FORMAT = "talkface.train/1"
ACCELERATORS = ("auto", "cpu", "cuda")
STRATEGIES = ("auto", "ddp")


@dataclass(frozen=True)
class Devices:
    """Where a stage trains (not part of its config: a run may resume elsewhere).

    accelerator: "auto" (cuda when available), "cpu" or "cuda". devices: processes (GPUs) per node.
    num_nodes: machines. strategy: "auto" (one process; DDP when devices x num_nodes > 1) or "ddp".
    precision: "auto" (bf16-mixed on cuda, 32-true on cpu) or any Fabric precision.
    """

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    def fabric(self) -> Fabric:
        """A Fabric for these devices (not launched)."""
        accelerator = self.accelerator
        if accelerator == "auto":
            accelerator = "cuda" if torch.cuda.is_available() else "cpu"
        precision = self.precision if self.precision != "auto" else ("bf16-mixed" if accelerator == "cuda"
                                                                      else "32-true")
        strategy = "ddp" if self.strategy == "ddp" or self.world_size > 1 else "auto"
        return Fabric(accelerator=accelerator, devices=self.devices, num_nodes=self.num_nodes, strategy=strategy,
                      precision=precision)


@dataclass
class TrainResult:
    """What a `train_stage` call did (on rank 0; other ranks return the same losses).

    step: steps done in total (== config.steps). losses: (step, {name: value}) of each step this call ran.
    checkpoints: paths written by this call, in order; last_checkpoint: the final one. seconds: wall time of the
    call; step_seconds: mean wall time of one step (data + updates) over the steps after the first (which includes
    start-up). n_samples: training samples in the split. device: where rank 0 ran. batch_size: the global batch.
    world_size: processes. validation: `Stage.validate`'s scores after the last step ({} on other ranks, or when
    `train_stage(validate=False)`). data_wait_seconds: mean wall time a step waited for its batch (the DataLoader's
    `next`, with Fabric's move to the device), over the same steps as step_seconds; 0.0 when not measured.
    step_times, data_waits: those two per step of this call, in seconds (a benchmark leaves out its own warm-up).
    """

    step: int
    losses: list[tuple[int, dict[str, float]]]
    checkpoints: list[Path]
    last_checkpoint: Path
    seconds: float
    step_seconds: float
    n_samples: int
    device: str
    batch_size: int
    world_size: int
    validation: dict[str, float] = field(default_factory=dict)
    data_wait_seconds: float = 0.0
    step_times: list[float] = field(default_factory=list)
    data_waits: list[float] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        """Training samples (all ranks) per second of step time."""
        return self.batch_size / self.step_seconds if self.step_seconds else 0.0

    @property
    def dataloader_share(self) -> float:
        """The fraction of step time spent waiting for batches: data_wait_seconds / step_seconds (0.0 when
        step_seconds is 0)."""
        return self.data_wait_seconds / self.step_seconds if self.step_seconds else 0.0

    def to_json(self) -> dict:
        """The fields, samples_per_second and dataloader_share as JSON primitives (paths as str), as a DDP job's
        rank 0 reports them."""
        return {**vars(self), "checkpoints": [str(p) for p in self.checkpoints],
                "last_checkpoint": str(self.last_checkpoint), "losses": [[s, v] for s, v in self.losses],
                "samples_per_second": self.samples_per_second, "dataloader_share": self.dataloader_share}


def checkpoint_path(out_dir: Path, stage: str, step: int) -> Path:
    return Path(out_dir) / f"{stage}-step{step:06d}.pt"


def load_checkpoint(path: Path, system: str | None = None, stage: str | None = None) -> dict:
    """A training checkpoint read with `torch.load(weights_only=True)` onto the CPU. Raises ValueError when it is not
    one, or (given `system` / `stage`) when it is another system's or stage's, naming both."""
    ckpt = checkpoint.load(path, FORMAT)
    for key, want in (("system", system), ("stage", stage)):
        if want is not None and ckpt.get(key) != want:
            raise ValueError(f"{path} is a checkpoint of {ckpt.get('system')}/{ckpt.get('stage')}, "
                             f"not of {system or ckpt.get('system')}/{stage or ckpt.get('stage')}")
    return ckpt


def train_stage(
    system: str,
    stage: Stage,
    config,
    store_dir: Path,
    out_dir: Path,
    devices: Devices = Devices(),
    resume_from: Path | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_sample: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    fabric: Fabric | None = None,
    inputs: dict[str, Path] | None = None,
    validate: bool = True,
) -> TrainResult:
    """Train `stage` (of system `system`) on `store_dir`'s train split for `config.steps` steps; checkpoints go to
    `out_dir` (created). In a DDP job every rank calls it with the same arguments.

    on_step(step, values) after every step (step counts from 1), values the stage's logged losses as floats,
    averaged over ranks. on_sample(step, images) every `config.sample_every` steps with the stage's `samples`
    (uint8 HWC arrays). on_checkpoint(path) after each checkpoint is written.
    resume_from: a checkpoint of this system and stage (module docstring); ValueError when it is another's or the
    config differs where it may not. fabric: an already launched Fabric (else one is made from `devices`).
    inputs: {stage name: its checkpoint} of the earlier stages whose networks this one uses (`Stage.uses`; not
    needed when resuming). validate: False skips `Stage.validate` after the last step (`TrainResult.validation` is
    then {}), e.g. for a benchmark that times training only.
    Raises ValueError when the train split has fewer samples than a batch, when a used stage's checkpoint is missing
    or another's, or when several processes are asked for outside a launched job (start them with
    `tasks.launch.run_ranks`, torchrun or srun).
    """
    if fabric is None and devices.world_size > 1 and not ({"LOCAL_RANK", "SLURM_PROCID"} & set(os.environ)):
        raise ValueError(f"{devices.world_size} processes: start the ranks with tasks.launch.run_ranks (or torchrun / "
                         "srun), each calling train_stage")
    if fabric is None:
        fabric = devices.fabric()
        fabric.launch()
    with checkpoint.torch_threads(config.cpu_threads if fabric.device.type == "cpu" else 0):
        return _train(system, stage, config, location.as_path(store_dir), Path(out_dir), fabric, resume_from, on_step,
                      on_sample, on_checkpoint, inputs or {}, validate)


def frozen_inputs(system: str, stage: Stage, config, inputs: dict[str, Path]) -> dict[str, dict]:
    """The saved form {name: {"stage", "module", "config", "state"}} of the networks `stage` uses, read from the
    used stages' checkpoints (`inputs`: {stage name: path}). Raises ValueError naming a missing one."""
    out = {}
    for name, (used, module) in stage.uses(config).items():
        if used.name not in inputs:
            raise ValueError(f"{system}/{stage.name} uses the trained {module} of stage {used.name}: train that stage "
                             f"first (training the whole system does), or give its checkpoint")
        ckpt = load_checkpoint(Path(inputs[used.name]), system, used.name)
        out[name] = {"stage": used.name, "module": module, "config": ckpt["config"], "state": ckpt["modules"][module]}
    return out


def build_frozen(stage: Stage, config, saved: dict[str, dict]) -> dict[str, torch.nn.Module]:
    """The frozen networks from their saved form (`frozen_inputs`): built by their own stage from its config,
    loaded, in eval mode, without gradients."""
    out = {}
    for name, (used, module) in stage.uses(config).items():
        entry = saved[name]
        net = used.modules(used.Config.from_dict(entry["config"]))[module]
        net.load_state_dict(entry["state"])
        out[name] = net.eval().requires_grad_(False)
    return out


class FrozenNetwork(nn.Module):
    """A frozen network (`Stage.uses`) whose forward runs in the training precision, as Fabric's module wrapper
    runs a trained one's: floating-point inputs cast to the precision's dtype (bfloat16 under "bf16-mixed"), the
    network under its forward context (autocast), floating-point outputs cast back to float32. Under "32-true" all
    three are no-ops. It is not Fabric's wrapper because under DDP that wraps the network in
    DistributedDataParallel, which refuses one without trainable parameters.

    module: the network (what `Stage.validate` and a checkpoint see). Any attribute or method the wrapper lacks is
    the network's (`detector.vocabulary`, `autoencoder.encode`); train()/eval()/requires_grad_() reach it as a
    submodule. Only `forward` runs in the precision: a stage calls another of its methods inside `fabric.autocast()`.
    """

    def __init__(self, module: nn.Module, precision: Precision):
        super().__init__()
        self.module = module
        self._precision = precision

    def forward(self, *args, **kwargs):
        args, kwargs = self._precision.convert_input((args, kwargs))
        with self._precision.forward_context():
            out = self.module(*args, **kwargs)
        return self._precision.convert_output(out)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # parameters, buffers, submodules (`module`)
        except AttributeError:
            return getattr(self.module, name)


def frozen_on_device(fabric: Fabric, nets: dict[str, nn.Module]) -> dict[str, FrozenNetwork]:
    """`build_frozen`'s networks in Fabric's precision (its `convert_module`: bfloat16 weights under "bf16-true",
    unchanged under mixed precision) on its device, each wrapped in a `FrozenNetwork`."""
    precision = fabric.strategy.precision
    return {name: FrozenNetwork(fabric.to_device(precision.convert_module(net)), precision)
            for name, net in nets.items()}


def _train(system, stage: Stage, config, store_dir: Path, out_dir: Path, fabric: Fabric, resume_from, on_step,
           on_sample, on_checkpoint, inputs: dict[str, Path], validate: bool) -> TrainResult:
    t0 = time.time()
    rank0 = fabric.global_rank == 0
    if rank0:
        out_dir.mkdir(parents=True, exist_ok=True)
    config = stage.for_store(config, store_dir)
    seed_everything(config.seed)
    modules = stage.modules(config)
    step, saved = 0, None
    if resume_from is not None:
        saved = load_checkpoint(resume_from, system, stage.name)
        checkpoint.check_resumable(saved["config"], config.to_dict(), RESUME_MAY_DIFFER | stage.resume_may_differ)
        for name, module in modules.items():
            module.load_state_dict(saved["modules"][name])
        step = int(saved["step"])
    frozen_saved = saved.get("frozen", {}) if saved is not None else frozen_inputs(system, stage, config, inputs)
    frozen = frozen_on_device(fabric, build_frozen(stage, config, frozen_saved))
    if fabric.world_size > 1:  # BatchNorm statistics over the global batch
        from tasks.sync_batchnorm import convert_sync_batchnorm

        modules = {name: convert_sync_batchnorm(m.to(fabric.device)) for name, m in modules.items()}
    wrapped, wrapped_opt = setup(fabric, modules, stage.optimizers(config, modules))
    wrapped.update(frozen)
    if saved is not None:
        for name, optimizer in wrapped_opt.items():
            optimizer.load_state_dict(saved["optimizers"][name])
        set_rng_state(saved["rng"])

    dataset = stage.dataset(store_dir, "train", config, saved["extra"] if saved else None)
    sampler = StepBatchSampler(len(dataset), config.batch_size, seed=config.seed, start_step=step,
                               rank=fabric.global_rank, world_size=fabric.world_size)
    loader = make_dataloader(dataset, seed=config.seed, num_workers=config.num_workers, batch_sampler=sampler,
                             pin_memory=fabric.device.type == "cuda")
    loader = fabric.setup_dataloaders(loader, use_distributed_sampler=False)
    extra = stage.extra_state(dataset)
    n_samples = len(dataset)

    losses: list[tuple[int, dict[str, float]]] = []
    checkpoints: list[Path] = []
    step_times: list[float] = []
    wait_times: list[float] = []  # of each step, waiting for its batch

    def save() -> None:
        path = checkpoint_path(out_dir, stage.name, step)
        if rank0:
            checkpoint.save({
                "format": FORMAT, "system": system, "stage": stage.name, "step": int(step),
                "modules": {k: {n: v.detach().cpu() for n, v in m.state_dict().items()} for k, m in modules.items()},
                "optimizers": {k: o.state_dict() for k, o in wrapped_opt.items()},
                "config": config.to_dict(), "extra": extra, "rng": rng_state(), "store_dir": str(store_dir),
                "frozen": frozen_saved,
            }, path)
            if on_checkpoint is not None:
                on_checkpoint(path)
        fabric.barrier()
        checkpoints.append(path)

    for name, module in wrapped.items():
        module.train(name not in frozen)
    batches = iter(loader)
    while step < config.steps:
        t_step = time.perf_counter()
        batch = next(batches)
        wait_times.append(time.perf_counter() - t_step)
        for name, lr in stage.learning_rates(config, step * config.batch_size * fabric.world_size / n_samples).items():
            for group in wrapped_opt[name].param_groups:
                group["lr"] = lr
        out = stage.step(wrapped, wrapped_opt, batch, config, fabric)
        step += 1
        values = _mean_over_ranks(fabric, out.losses)
        losses.append((step, values))
        step_times.append(time.perf_counter() - t_step)
        if rank0 and on_step is not None:
            on_step(step, values)
        if rank0 and on_sample is not None and config.sample_every and step % config.sample_every == 0:
            images = stage.samples(batch, out)
            if images:
                on_sample(step, images)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save()
    if not checkpoints or checkpoints[-1] != checkpoint_path(out_dir, stage.name, step):
        save()
    del batches, loader  # stops persistent workers
    unwrapped = {**modules, **{name: net.module for name, net in frozen.items()}}
    validation = stage.validate(unwrapped, store_dir, config) if rank0 and validate else {}
    return TrainResult(step=step, losses=losses, checkpoints=checkpoints, last_checkpoint=checkpoints[-1],
                       seconds=time.time() - t0, step_seconds=_mean_after_first(step_times),
                       n_samples=len(dataset), device=str(fabric.device), batch_size=config.batch_size,
                       world_size=fabric.world_size, validation=validation,
                       data_wait_seconds=_mean_after_first(wait_times), step_times=step_times,
                       data_waits=wait_times)


def _mean_after_first(seconds: list[float]) -> float:
    """The mean of per-step times without the first step's (start-up), or of the one step; 0.0 for none."""
    timed = seconds[1:] or seconds
    return float(np.mean(timed)) if timed else 0.0


def setup(fabric: Fabric, modules: dict, optimizers: dict) -> tuple[dict, dict]:
    """({name: module}, {name: optimizer}) through Fabric: each module set up with its optimizer, or alone."""
    wrapped, wrapped_opt = {}, {}
    for name, module in modules.items():
        if name in optimizers:
            wrapped[name], wrapped_opt[name] = fabric.setup(module, optimizers[name])
        else:
            wrapped[name] = fabric.setup_module(module)
    return wrapped, wrapped_opt


def fixed_batch_step_times(stage: Stage, config, store_dir: Path, devices: Devices = Devices(), system: str = "",
                           inputs: dict[str, Path] | None = None) -> list[float]:
    """`time.perf_counter()` after each of `config.steps` steps of `stage` on one batch (the sampler's first)
    already on the device and reused every step, with the loop's one read of the logged values a step: what
    training costs when loading is free. The benchmarks compare it with `train_stage` (the DataLoader's share).
    inputs, system: as for `train_stage`, for a stage that uses earlier stages' networks."""
    from torch.utils.data import default_collate

    fabric = devices.fabric()
    config = stage.for_store(config, location.as_path(store_dir))
    seed_everything(config.seed)
    modules = stage.modules(config)
    wrapped, optimizers = setup(fabric, modules, stage.optimizers(config, modules))
    for module in wrapped.values():
        module.train()
    frozen = build_frozen(stage, config, frozen_inputs(system, stage, config, inputs or {}))
    wrapped.update(frozen_on_device(fabric, frozen))
    dataset = stage.dataset(location.as_path(store_dir), "train", config)
    indices = next(iter(StepBatchSampler(len(dataset), config.batch_size, seed=config.seed)))
    batch = {k: v.to(fabric.device) for k, v in default_collate([dataset[i] for i in indices]).items()}
    stamps = []
    with checkpoint.torch_threads(config.cpu_threads if fabric.device.type == "cpu" else 0):
        for _ in range(config.steps):
            _mean_over_ranks(fabric, stage.step(wrapped, optimizers, batch, config, fabric).losses)
            stamps.append(time.perf_counter())
    return stamps


def _mean_over_ranks(fabric: Fabric, losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """The step's logged values as floats, averaged over ranks (one device sync; one all-reduce under DDP)."""
    names = list(losses)
    values = torch.stack([torch.as_tensor(losses[k], dtype=torch.float32, device=fabric.device) for k in names])
    if fabric.world_size > 1:
        values = fabric.all_reduce(values, reduce_op="mean")
    return dict(zip(names, values.tolist()))
