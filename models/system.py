"""What a system is to the rest of talkface: its training stages, its generator, the store crop it renders, the metrics
it is scored with (`../shared/specs/systems.md`). Each system is one package under `models/` exposing `SYSTEM`;
`models.registry` lists them.

A `Stage` is one network (or GAN) trained by the one loop in `tasks/training.py`. It owns what differs between
stages and nothing else: its documented config dataclass with "paper" and "small" presets, how to build its modules
and optimizers (nanoGPT's "the model owns its optimizer configuration"), its training Dataset, one optimisation step
and the images it shows in MLflow. The loop owns devices, precision, DDP, batch order, checkpoints and resume.

Pure: torch only (no Prefect, MLflow, dlib or pydantic), so `models/` imports on the GPU machine.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, NamedTuple, Protocol, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from storage.crops import Crop


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Turn gradients of every parameter of `module` on or off (a GAN step freezes its discriminator this way)."""
    for p in module.parameters():
        p.requires_grad_(flag)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Context: `module` in eval mode (BatchNorm running statistics, no dropout); afterwards every submodule's own
    training flag as it was, so a module that is training keeps training (inference from inside a training run)."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.training = training


def to_uint8_rows(*rows: torch.Tensor) -> np.ndarray:
    """Frames float (N, 3, H, W) in [-1, 1], one tensor per row -> one uint8 (rows·H, N·W, 3) RGB image (a stage's
    sample images: generated frames over real ones)."""
    images = [((r.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8) for r in rows]
    grid = torch.cat([torch.cat(list(img), dim=2) for img in images], dim=1)  # (3, rows·H, N·W)
    return grid.permute(1, 2, 0).cpu().numpy()


class StepOutput(NamedTuple):
    """What one `Stage.step` did.

    losses: {name: 0-dim detached tensor}, the logged values ("g/<term>", "d/<term>" for GANs; "loss" for a single
        network); the loop averages them over ranks and reads them as floats once per step.
    outputs: detached tensors `Stage.samples` may turn into images (e.g. generated frames); may be empty.
    """

    losses: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor] = {}


class Stage:
    """One training stage. Subclasses set the class attributes and implement the four methods.

    name: the stage's name, unique within its system ("atnet", "vgnet", "syncnet", …); checkpoints are
        `<name>-stepNNNNNN.pt`.
    Config: the stage's config dataclass (a `models.config.TrainConfig` subclass); `Config.preset(name)` gives the
        "paper" and "small" presets.
    reads: the store fields its dataset reads (`storage.shards.CONTRACT` names, the crops among them), checked
        before training starts: a store built without one of them is refused, with the build command that adds it.
    inference_modules: the modules an exported model directory keeps (the rest, e.g. discriminators, are dropped).
    resume_may_differ: config fields (dotted for nested ones) that may change when a run resumes, beyond the loop's
        own (`models.config.RESUME_MAY_DIFFER`).
    `uses(cfg)`: the trained networks of earlier stages this one takes, frozen (e.g. a loss network); the loop
        loads each from that stage's checkpoint (`train_stage(inputs=…)`), keeps it in eval mode without gradients
        and outside DDP, passes it to `step` among the modules (its forward in the training precision, its other
        attributes and methods as they are: `tasks.training.FrozenNetwork`), and saves it in this stage's
        checkpoints, so a resumed run needs no inputs.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    reads: ClassVar[tuple[str, ...]] = ()
    inference_modules: ClassVar[tuple[str, ...]] = ()
    resume_may_differ: ClassVar[frozenset[str]] = frozenset()

    def for_store(self, cfg, store_dir: Path):
        """The config completed with what depends on the training store, before anything is built from it (e.g. the
        word detector's vocabulary); the loop trains, checkpoints and resumes with the result. Default: `cfg`."""
        return cfg

    def modules(self, cfg) -> dict[str, nn.Module]:
        """The freshly initialised networks, by name (called after the loop seeds every generator)."""
        raise NotImplementedError

    def uses(self, cfg) -> dict[str, tuple["Stage", str]]:
        """{module name in this stage: (the earlier stage, its module name)} of the frozen inputs. Default: none."""
        return {}

    def optimizers(self, cfg, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per trained module, keyed by the module's name."""
        raise NotImplementedError

    def dataset(self, store_dir: Path, split: str, cfg, state: dict | None = None) -> Dataset:
        """The training samples of a store split, each a dict of tensors. state: what `extra_state` saved in the
        checkpoint being resumed (None for a fresh run)."""
        raise NotImplementedError

    def step(self, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
             batch: dict[str, torch.Tensor], cfg, fabric) -> StepOutput:
        """One optimisation step on one batch already on the device; gradients through `fabric.backward`."""
        raise NotImplementedError

    def learning_rates(self, cfg, epoch: float) -> dict[str, float]:
        """{optimizer name: learning rate} for the step about to run, `epoch` the passes over the training set so
        far (fractional), for a stage with a schedule; the loop sets them before each step, so a resumed run follows
        the same schedule. Default: none (each optimizer keeps its rate)."""
        return {}

    def extra_state(self, dataset: Dataset) -> dict:
        """Tensors and primitives (weights-only loadable) the stage's checkpoints carry beyond modules and
        optimizers, e.g. AT-net's landmark PCA basis. Default: none."""
        return {}

    def validate(self, modules: dict[str, nn.Module], store_dir: Path, cfg) -> dict[str, float]:
        """Scores of the trained networks on the store's held-out data, after the last step (rank 0; the modules
        unwrapped), e.g. a classifier's accuracy, as {"<split>/<name>": value}; logged as `eval/<stage>/<name>`.
        Default: none."""
        return {}

    def samples(self, batch: dict[str, torch.Tensor], out: StepOutput) -> dict[str, np.ndarray]:
        """Images of a step for MLflow, uint8 (H, W, 3) by name. Default: none."""
        return {}


class Generator(Protocol):
    """All that evaluate, generate and the benchmark see of a trained system.

    crop: the crop it renders (the store's field of that name; `tasks.generate` prepares a photo's the same way).
    load(model_dir, device): the trained system from its model directory (`tasks.model_dir`).
    __call__(still, still_landmarks, audio, n_frames): still uint8 (H, W, 3), the aligned crop of one frame;
        still_landmarks float32 (68, 2), its landmarks in crop pixels; audio int16 (S,) at 16 kHz; n_frames video
        frames at 25 fps (ceil(S / 640) for the whole recording) -> uint8 (n_frames, H, W, 3) RGB.
    audio_features(audio), optional: generators that extract audio features on the CPU expose them as
        `audio_features(audio)`: audio int16 (S,) at 16 kHz -> the float32 array their networks read (e.g. ATVGnet's
        MFCC (A, 13) at 100 Hz), computed the way `__call__` computes them, so a benchmark can time it apart.
    """

    crop: Crop

    @classmethod
    def load(cls, model_dir: Path, device: str | torch.device = "cpu") -> "Generator": ...

    def __call__(self, still: np.ndarray, still_landmarks: np.ndarray, audio: np.ndarray,
                 n_frames: int) -> np.ndarray: ...


@dataclass(frozen=True)
class System:
    """A registered system.

    name: registry key and MLflow registered-model name. paper: the citation. stages: trained in this order.
    crop: the store crop its generator renders. metrics: the metric names its evaluation reports.
    generator: its `Generator` class (None for a system that renders nothing, e.g. the SyncNet expert).
    importer: for a system whose authors released weights, `importer(files, basics)` -> `models.weights.Released`:
        their files (paths, in any order) read without running their pickles and mapped onto talkface's modules,
        with a strict key and shape check (`talkface import-weights`); basics: a folder of constants the authors'
        protocol reads, None for the shipped copy. Raises FileNotFoundError / ValueError naming the file or key.
    """

    name: str
    paper: str
    stages: tuple[Stage, ...]
    crop: Crop
    metrics: frozenset[str] = field(default_factory=frozenset)
    generator: type | None = None
    importer: Callable[[Sequence[Path], Path | None], Any] | None = None

    def stage(self, name: str) -> Stage:
        """The stage called `name`. Raises KeyError listing the system's stages."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"system {self.name!r} has no stage {name!r}; its stages: {', '.join(self.stage_names)}")

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def describe(self) -> dict[str, Any]:
        """name, paper, stages, crop and metrics as primitives (for `talkface systems` and model.json)."""
        return {"name": self.name, "paper": self.paper, "stages": list(self.stage_names),
                "crop": {"field": self.crop.field, "size": list(self.crop.size)}, "metrics": sorted(self.metrics),
                "generates": self.generator is not None, "imports_released_weights": self.importer is not None}
